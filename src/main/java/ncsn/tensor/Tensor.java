package ncsn.tensor;

import java.util.Arrays;
import ncsn.autograd.Autograd;
import ncsn.autograd.Node;

/**
 * An n-dimensional array in contiguous row-major layout (NCHW for images), float32 or float64,
 * on one device. Reshapes are views that share storage. A tensor allocated inside an open
 * {@link Scope} is freed when the scope closes; any later use fails with a message naming it.
 *
 * <p>Autograd state: {@code requiresGrad} marks leaves (parameters) whose gradient accumulates
 * into {@link #grad()}; a tensor produced by an op from such inputs carries the {@link Node} that
 * made it until {@link Autograd#backward} consumes the graph.
 */
public final class Tensor {
    private final int[] shape;
    private final int numel;
    private final Storage storage;
    private boolean requiresGrad;
    private Tensor grad;
    private Node node;
    /** Set when backward consumed the node that made this tensor: its graph is gone. */
    private boolean graphReleased;
    private String name;
    /**
     * Element offset into the storage: 0 for every tensor except the one-element views that
     * {@link #get}/{@link #set} hand to a device backend's copy.
     */
    private int elementOffset;

    private Tensor(Storage storage, int[] shape) {
        this.storage = storage;
        this.shape = shape;
        this.numel = numel(shape);
    }

    // ---- creation -------------------------------------------------------------------------

    /** Uninitialised CPU tensor (contents arbitrary); scope-owned when a scope is open. */
    public static Tensor empty(DType dtype, int... shape) {
        return allocate(Device.CPU, dtype, shape, false);
    }

    /** Zero-filled CPU tensor; scope-owned when a scope is open. */
    public static Tensor zeros(DType dtype, int... shape) {
        return allocate(Device.CPU, dtype, shape, true);
    }

    /** Uninitialised tensor on {@code device} (CUDA tensors are float32); scope-owned when a scope is open. */
    public static Tensor empty(Device device, DType dtype, int... shape) {
        return allocate(device, dtype, shape, false);
    }

    /** Zero-filled tensor on {@code device}; scope-owned when a scope is open. */
    public static Tensor zeros(Device device, DType dtype, int... shape) {
        return allocate(device, dtype, shape, true);
    }

    /** Same device, dtype and shape as {@code t}; contents arbitrary. */
    public static Tensor emptyLike(Tensor t) {
        return empty(t.device(), t.dtype(), t.shape);
    }

    public static Tensor zerosLike(Tensor t) {
        return zeros(t.device(), t.dtype(), t.shape);
    }

    /** A persistent zero CPU tensor that no scope owns (parameters, optimizer state, gradients). */
    public static Tensor persistent(DType dtype, int... shape) {
        return persistent(Device.CPU, dtype, shape);
    }

    /** A persistent zero tensor on {@code device} that no scope owns. */
    public static Tensor persistent(Device device, DType dtype, int... shape) {
        int[] s = checkShape(shape);
        return new Tensor(newStorage(device, dtype, numel(s), false, true), s);
    }

    /** A persistent zero-initialised leaf with {@code requiresGrad}. */
    public static Tensor parameter(String name, DType dtype, int... shape) {
        Tensor t = persistent(dtype, shape);
        t.requiresGrad = true;
        t.name = name;
        return t;
    }

    /** Wraps an existing array (no copy; not scope-owned). */
    public static Tensor wrap(float[] data, int... shape) {
        int[] s = checkShape(shape);
        TensorException.check(data.length == numel(s), "wrap",
                "array of length " + data.length + " does not fill shape " + TensorException.shape(s));
        return new Tensor(new CpuStorage(data, false), s);
    }

    /** Wraps an existing array (no copy; not scope-owned). */
    public static Tensor wrap(double[] data, int... shape) {
        int[] s = checkShape(shape);
        TensorException.check(data.length == numel(s), "wrap",
                "array of length " + data.length + " does not fill shape " + TensorException.shape(s));
        return new Tensor(new CpuStorage(data, false), s);
    }

    /** A one-element tensor of shape [1] holding v. */
    public static Tensor scalar(DType dtype, double v) {
        Tensor t = empty(dtype, 1);
        t.set(0, v);
        return t;
    }

    /**
     * A tensor over storage made by another backend (e.g. {@code ncsn.cuda.CudaStorage}), owned by
     * the innermost open scope when {@code scopeOwned} and a scope is open (freed when it closes).
     */
    public static Tensor ofStorage(Storage storage, boolean scopeOwned, int... shape) {
        int[] s = checkShape(shape);
        TensorException.check(storage.length() == numel(s), "ofStorage",
                "storage of " + storage.length() + " elements does not fill shape " + TensorException.shape(s));
        Scope scope = Scope.current();
        if (scopeOwned && scope != null) scope.adopt(storage);
        return new Tensor(storage, s);
    }

    private static Tensor allocate(Device device, DType dtype, int[] shape, boolean zero) {
        int[] s = checkShape(shape);
        Scope scope = Scope.current();
        Storage st = newStorage(device, dtype, numel(s), scope != null, zero);
        if (scope != null) scope.adopt(st);
        return new Tensor(st, s);
    }

    private static Storage newStorage(Device device, DType dtype, int length, boolean pooled, boolean zero) {
        return device == Device.CPU ? CpuStorage.allocate(dtype, length, pooled, zero)
                : DeviceBackend.of(device).allocate(dtype, length, pooled, zero);
    }

    private static int[] checkShape(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new TensorException("shape " + Arrays.toString(shape) + " has a negative size");
            n *= d;
            if (n > Integer.MAX_VALUE - 16)
                throw new TensorException("shape " + Arrays.toString(shape) + " has more than 2^31 elements");
        }
        return shape.clone();
    }

    static int numel(int[] shape) {
        int n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    // ---- shape and storage ----------------------------------------------------------------

    public int[] shape() {
        return shape.clone();
    }

    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public int rank() {
        return shape.length;
    }

    public int numel() {
        return numel;
    }

    public DType dtype() {
        return storage.dtype();
    }

    public Device device() {
        return storage.device();
    }

    public Storage storage() {
        return storage;
    }

    public boolean isLive() {
        return !storage.isFreed();
    }

    public boolean sameShape(Tensor o) {
        return Arrays.equals(shape, o.shape);
    }

    public boolean hasShape(int... s) {
        return Arrays.equals(shape, s);
    }

    /** The float32 array behind this tensor (length == numel). */
    public float[] f32() {
        requireLive("f32");
        if (!(storage instanceof CpuStorage c) || c.f == null)
            throw new TensorException("tensor " + this + " is not a float32 CPU tensor");
        return c.f;
    }

    /** The float64 array behind this tensor (length == numel). */
    public double[] f64() {
        requireLive("f64");
        if (!(storage instanceof CpuStorage c) || c.d == null)
            throw new TensorException("tensor " + this + " is not a float64 CPU tensor");
        return c.d;
    }

    /** Throws a {@link TensorException} naming {@code op} if this tensor was freed. */
    public void requireLive(String op) {
        if (storage.isFreed())
            throw new TensorException(op + ": " + describe() + " was freed (its scope closed or free() was called)");
    }

    /** Whether the storage is host memory (the .f32()/.f64() arrays exist). */
    public boolean isCpu() {
        return storage.device() == Device.CPU;
    }

    /** One element; on a device this is a synchronising copy of one value (slow; for tests and scalars). */
    public double get(int flat) {
        if (!isCpu()) return elementOnHost(flat).get(0);
        return dtype() == DType.F32 ? f32()[flat] : f64()[flat];
    }

    /** Sets one element; on a device this is a copy of one value (slow; for tests and scalars). */
    public void set(int flat, double v) {
        if (!isCpu()) {
            Tensor one = Tensor.wrap(new float[] {(float) v}, 1);
            DeviceBackend.of(device()).copy(one, flatSlice(flat));
            return;
        }
        if (dtype() == DType.F32) f32()[flat] = (float) v;
        else f64()[flat] = v;
    }

    /** A one-element view for device element access (carries the offset for the backend's copy). */
    private Tensor flatSlice(int flat) {
        TensorException.check(flat >= 0 && flat < numel, "element", "index " + flat + " outside " + describe());
        Tensor t = new Tensor(storage, new int[] {1});
        t.elementOffset = flat;
        return t;
    }

    private Tensor elementOnHost(int flat) {
        Tensor host = Tensor.wrap(new float[1], 1);
        DeviceBackend.of(device()).copy(flatSlice(flat), host);
        return host;
    }

    /** Element offset into the storage (see the field). */
    public int elementOffset() {
        return elementOffset;
    }

    /** Fills every element with {@code v} (any device). */
    public Tensor fill(double v) {
        requireLive("fill");
        if (!isCpu()) DeviceBackend.of(device()).fill(this, v);
        else if (dtype() == DType.F32) Arrays.fill(f32(), (float) v);
        else Arrays.fill(f64(), v);
        return this;
    }

    /** The single value of a one-element tensor. */
    public double item() {
        TensorException.check(numel == 1, "item", "tensor " + this + " has " + numel + " elements, not 1");
        return get(0);
    }

    /** Copies the contents into a new float64 array (from a device: a synchronising copy). */
    public double[] toDoubleArray() {
        if (!isCpu()) {
            Tensor host = to(Device.CPU);
            double[] d = host.toDoubleArray();
            host.free();
            return d;
        }
        double[] out = new double[numel];
        if (dtype() == DType.F64) System.arraycopy(f64(), 0, out, 0, numel);
        else {
            float[] f = f32();
            for (int i = 0; i < numel; i++) out[i] = f[i];
        }
        return out;
    }

    /** Frees the storage now (and with it every view of it). */
    public void free() {
        storage.free();
    }

    // ---- conversions and views ------------------------------------------------------------

    /**
     * A copy on {@code device} (not connected to the autograd graph; float32 on CUDA, a CUDA tensor
     * comes back as float32); scope-owned when a scope is open. Always a new tensor.
     */
    public Tensor to(Device device) {
        requireLive("to(" + device + ")");
        if (device == device() && isCpu()) return copy();
        Tensor src = device != Device.CPU && dtype() != DType.F32 ? to(DType.F32) : this;
        Tensor out = empty(device, DType.F32, shape);
        DeviceBackend.of(device == Device.CPU ? device() : device).copy(src, out);
        if (src != this) src.free();
        return out;
    }

    /** A copy in the given dtype (not connected to the autograd graph); scope-owned when a scope is open. */
    public Tensor to(DType dtype) {
        requireLive("to(" + dtype + ")");
        if (!isCpu()) {
            TensorException.check(dtype == DType.F32, "to(" + dtype + ")", describe() + " is on " + device()
                    + ", which holds float32 only: move it to the CPU first (to(Device.CPU))");
            Tensor out = empty(device(), dtype, shape);
            DeviceBackend.of(device()).copy(this, out);
            return out;
        }
        Tensor out = empty(dtype, shape);
        if (dtype == DType.F64) {
            double[] o = out.f64();
            if (dtype() == DType.F64) System.arraycopy(f64(), 0, o, 0, numel);
            else {
                float[] f = f32();
                for (int i = 0; i < numel; i++) o[i] = f[i];
            }
        } else {
            float[] o = out.f32();
            if (dtype() == DType.F32) System.arraycopy(f32(), 0, o, 0, numel);
            else {
                double[] d = f64();
                for (int i = 0; i < numel; i++) o[i] = (float) d[i];
            }
        }
        return out;
    }

    /** A detached copy with the same dtype. */
    public Tensor copy() {
        return to(dtype());
    }

    /** Copies {@code src}'s values into this tensor (same numel; dtypes may differ). */
    public Tensor copyFrom(Tensor src) {
        requireLive("copyFrom");
        src.requireLive("copyFrom");
        TensorException.check(src.numel == numel, "copyFrom",
                "source " + src.describe() + " and destination " + describe() + " differ in size");
        if (!isCpu() || !src.isCpu()) {
            DeviceBackend.of(isCpu() ? src.device() : device()).copy(src, this);
            return this;
        }
        if (dtype() == DType.F32 && src.dtype() == DType.F32) System.arraycopy(src.f32(), 0, f32(), 0, numel);
        else if (dtype() == DType.F64 && src.dtype() == DType.F64) System.arraycopy(src.f64(), 0, f64(), 0, numel);
        else for (int i = 0; i < numel; i++) set(i, src.get(i));
        return this;
    }

    /**
     * A view with another shape over the same storage (one dimension may be -1 to infer it).
     * Recorded in autograd, so gradients flow through the view.
     */
    public Tensor reshape(int... newShape) {
        requireLive("reshape");
        int[] s = newShape.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == -1) {
                TensorException.check(infer < 0, "reshape", "more than one -1 in " + Arrays.toString(newShape));
                infer = i;
            } else known *= s[i];
        }
        if (infer >= 0 && known > 0 && numel % known == 0) s[infer] = (int) (numel / known);
        TensorException.check(numel(checkShape(s)) == numel, "reshape",
                "cannot view " + describe() + " as " + Arrays.toString(newShape));
        Tensor view = new Tensor(storage, s);
        if (Autograd.needsGrad(this)) {
            int[] back = shape;
            Autograd.record("reshape", view, new Tensor[] {this}, g -> new Tensor[] {g.reshapeNoGrad(back)});
        }
        return view;
    }

    /** A reshape view that is not recorded in autograd (used inside backward functions). */
    public Tensor reshapeNoGrad(int... s) {
        TensorException.check(numel(checkShape(s)) == numel, "reshape",
                "cannot view " + describe() + " as " + Arrays.toString(s));
        return new Tensor(storage, s.clone());
    }

    // ---- autograd state -------------------------------------------------------------------

    public boolean requiresGrad() {
        return requiresGrad;
    }

    /** Marks a leaf as requiring a gradient (returns this). */
    public Tensor requiresGrad(boolean on) {
        TensorException.check(node == null || on, "requiresGrad", "cannot clear requiresGrad on a non-leaf " + this);
        this.requiresGrad = on;
        return this;
    }

    /** Accumulated gradient of a leaf after {@link Autograd#backward}, or null. */
    public Tensor grad() {
        return grad;
    }

    public void setGrad(Tensor g) {
        this.grad = g;
    }

    /** Zeroes the accumulated gradient (keeps the buffer for reuse). */
    public void zeroGrad() {
        if (grad != null) grad.fill(0.0);
    }

    public Node node() {
        return node;
    }

    /** Used by {@link Autograd} only: attaches or detaches the node that produced this tensor. */
    public void setNode(Node n) {
        this.node = n;
        if (n != null) this.requiresGrad = true;
    }

    /** Used by {@link Autograd} only: drops the node after backward has gone through it. */
    public void releaseNode() {
        if (node != null) graphReleased = true;
        node = null;
    }

    /** True for a non-leaf whose graph an earlier backward already consumed. */
    public boolean graphReleased() {
        return graphReleased;
    }

    public boolean isLeaf() {
        return node == null && !graphReleased;
    }

    public String name() {
        return name;
    }

    public Tensor name(String n) {
        this.name = n;
        return this;
    }

    /** "name [2, 3, 4] float32" style description for messages. */
    public String describe() {
        return (name != null ? "'" + name + "' " : "") + "tensor " + Arrays.toString(shape) + " " + storage.dtype();
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + " " + storage.dtype() + " " + storage.device()
                + (name != null ? " '" + name + "'" : "") + (storage.isFreed() ? " (freed)" : "");
    }
}
