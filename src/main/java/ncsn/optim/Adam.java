package ncsn.optim;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import ncsn.cpu.Parallel;
import ncsn.cuda.CudaContext;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Adam exactly as PyTorch 1.13's {@code torch.optim.Adam} computes it (single-tensor path: not
 * foreach, not fused, not capturable, not maximize). For each parameter p with a gradient, at its
 * own step t = 1, 2, ... (parameters without a gradient are skipped and their t does not advance):
 * <pre>
 *   g  = grad + weight_decay * p                    (only when weight_decay != 0)
 *   m  = m * b1 + (1 - b1) * g                      exp_avg.mul_(b1).add_(g, alpha=1-b1)
 *   v  = v * b2 + ((1 - b2) * g) * g                exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
 *   bc1 = 1 - b1^t,  bc2 = 1 - b2^t,  step_size = lr / bc1        (Python floats: double)
 *   vmax = max(vmax, v) and use vmax below          (amsgrad only)
 *   denom = sqrt(v) / sqrt(bc2) + eps
 *   p  = p + ((-step_size) * m) / denom             param.addcdiv_(m, denom, value=-step_size)
 * </pre>
 * float32 rounding follows PyTorch's CPU kernels, so that the same gradients give the same bits:
 * the Python scalars (b1, 1-b1, b2, 1-b2, eps, sqrt(bc2), -step_size, weight_decay) are rounded
 * to float32 once; every tensor operation above rounds its result to float32; the two
 * {@code add(..., alpha=)} calls are fused multiply-adds (ATen's vectorised add is
 * {@code fmadd(other, alpha, self)}), and so is addcmul's final add ({@code self + (value*t1)*t2}:
 * the AVX2 kernels are compiled with FMA contraction); addcdiv is {@code self + (value*m)/denom},
 * where nothing can fuse. Checked bit for bit against torch 1.13.1 (Debian build, AVX2 kernels)
 * over 5 steps of 1037 elements with and without weight decay and amsgrad (AdamTest keeps a
 * small golden set). float64 parameters run the plain reference loop (the same formulas in
 * double, unfused).
 *
 * <p>float32 parameters are updated "multi-tensor" style: every parameter is cut into chunks and
 * all chunks of all parameters are handed out to the {@link Parallel} workers from one counter;
 * a chunk is one fused pass reading p, g, m, v once and writing p, m, v once.
 *
 * <p>float32 CUDA parameters ({@link Gpu}, src/main/cuda/adam.cu) are updated by one kernel
 * launch per step (per group of parameters sharing a step count, normally one group): the same
 * float32 operations and roundings as {@link Cpu}, so GPU and CPU agree bit for bit given the same
 * gradients (the test allows a few ulp). The state tensors live on the parameter's device.
 *
 * <p>State (for checkpoints, named as in PyTorch's state_dict): per parameter {@code step},
 * {@code exp_avg}, {@code exp_avg_sq} and, with amsgrad, {@code max_exp_avg_sq}; see
 * {@link #state(int)} and {@link #initState(int)}. They are tensors on the parameter's device
 * (read them with {@code toDoubleArray()} / {@code copyFrom} across devices).
 */
public final class Adam {
    /** Per-parameter state, created on the parameter's first step (like PyTorch's lazy state). */
    public static final class ParamState {
        private long step;
        private final Tensor expAvg, expAvgSq, maxExpAvgSq;

        ParamState(Tensor p, boolean amsgrad) {
            String base = p.name() != null ? p.name() + "." : "";
            // Zero-filled, on the parameter's device (the moments start at 0 as in PyTorch).
            expAvg = Tensor.persistent(p.device(), p.dtype(), p.shape()).name(base + "exp_avg");
            expAvgSq = Tensor.persistent(p.device(), p.dtype(), p.shape()).name(base + "exp_avg_sq");
            maxExpAvgSq = amsgrad ? Tensor.persistent(p.device(), p.dtype(), p.shape()).name(base + "max_exp_avg_sq") : null;
        }

        /** Number of updates applied to this parameter (PyTorch's state['step']). */
        public long step() {
            return step;
        }

        public void setStep(long step) {
            if (step < 0) throw new TensorException("adam: step must be >= 0, got " + step);
            this.step = step;
        }

        /** First moment m (PyTorch: exp_avg); same shape and dtype as the parameter; writable. */
        public Tensor expAvg() {
            return expAvg;
        }

        /** Second moment v (PyTorch: exp_avg_sq). */
        public Tensor expAvgSq() {
            return expAvgSq;
        }

        /** Running maximum of v (PyTorch: max_exp_avg_sq), null unless amsgrad. */
        public Tensor maxExpAvgSq() {
            return maxExpAvgSq;
        }
    }

    private final List<Tensor> params;
    private final ParamState[] state;
    private double lr;
    private final double beta1, beta2, eps, weightDecay;
    private final boolean amsgrad;
    /** Parameter tables of the CUDA parameters, created on the first step that has any. */
    private Gpu gpu;

    /** PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay, no amsgrad (the spec's settings). */
    public Adam(List<Tensor> params) {
        this(params, 1e-3, 0.9, 0.999, 1e-8, 0.0, false);
    }

    public Adam(List<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay, boolean amsgrad) {
        // Same checks and wording as torch.optim.Adam.
        if (!(lr >= 0)) throw new TensorException("adam: Invalid learning rate: " + lr);
        if (!(eps >= 0)) throw new TensorException("adam: Invalid epsilon value: " + eps);
        if (!(beta1 >= 0 && beta1 < 1)) throw new TensorException("adam: Invalid beta parameter at index 0: " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new TensorException("adam: Invalid beta parameter at index 1: " + beta2);
        if (!(weightDecay >= 0)) throw new TensorException("adam: Invalid weight_decay value: " + weightDecay);
        IdentityHashMap<Tensor, Boolean> seen = new IdentityHashMap<>();
        for (Tensor p : params) {
            if (p == null) throw new TensorException("adam: a parameter is null");
            if (seen.put(p, Boolean.TRUE) != null) throw new TensorException("adam: parameter " + p.describe() + " is listed twice");
            if (!p.isLeaf()) throw new TensorException("adam: can't optimize a non-leaf tensor " + p.describe());
        }
        this.params = Collections.unmodifiableList(new ArrayList<>(params));
        this.state = new ParamState[this.params.size()];
        this.lr = lr;
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.amsgrad = amsgrad;
    }

    public List<Tensor> params() {
        return params;
    }

    /** State of parameter i, or null before its first step. */
    public ParamState state(int i) {
        return state[i];
    }

    /** State of parameter i, created (zero moments, step 0) if absent: for loading a checkpoint. */
    public ParamState initState(int i) {
        if (state[i] == null) state[i] = new ParamState(params.get(i), amsgrad);
        return state[i];
    }

    public double lr() {
        return lr;
    }

    public void setLr(double lr) {
        if (!(lr >= 0)) throw new TensorException("adam: Invalid learning rate: " + lr);
        this.lr = lr;
    }

    public double beta1() {
        return beta1;
    }

    public double beta2() {
        return beta2;
    }

    public double eps() {
        return eps;
    }

    public double weightDecay() {
        return weightDecay;
    }

    public boolean amsgrad() {
        return amsgrad;
    }

    /**
     * Frees the optimizer's own memory: the moments of every parameter and, on CUDA, the parameter
     * tables of the multi-tensor kernel (device memory is not garbage-collected). Idempotent; the
     * optimizer must not be stepped afterwards.
     */
    public void free() {
        for (ParamState s : state) {
            if (s == null) continue;
            for (Tensor t : new Tensor[] {s.expAvg, s.expAvgSq, s.maxExpAvgSq})
                if (t != null && t.isLive()) t.free();
        }
        if (gpu != null) {
            gpu.clear();
            gpu = null;
        }
    }

    /** Sets every parameter's gradient to zero (keeping the buffers, as PyTorch 1.13's zero_grad()). */
    public void zeroGrad() {
        for (Tensor p : params) p.zeroGrad();
    }

    /** One update of every parameter that has a gradient. */
    public void step() {
        Cpu.Work work = null;
        // CUDA parameters grouped by their step count (one kernel launch per group; normally one group).
        Map<Long, List<Integer>> gpuGroups = null;
        for (int i = 0; i < params.size(); i++) {
            Tensor p = params.get(i);
            Tensor g = p.grad();
            if (g == null) continue;
            p.requireLive("adam");
            g.requireLive("adam");
            if (!g.sameShape(p) || g.dtype() != p.dtype())
                throw new TensorException("adam: gradient " + g.describe() + " does not match parameter " + p.describe());
            if (g.device() != p.device())
                throw new TensorException("adam: gradient " + g.describe() + " is on " + g.device() + " but parameter "
                        + p.describe() + " is on " + p.device());
            ParamState s = initState(i);
            if (s.expAvg.device() != p.device())
                throw new TensorException("adam: state of parameter " + p.describe() + " is on " + s.expAvg.device()
                        + " but the parameter is on " + p.device() + " (move parameters before the first step)");
            s.step++;
            // Python-float (double) scalars, as _single_tensor_adam computes them.
            double t = s.step;
            double bc1 = 1 - Math.pow(beta1, t);
            double bc2 = 1 - Math.pow(beta2, t);
            double stepSize = lr / bc1;
            double bc2Sqrt = Math.sqrt(bc2);
            if (!p.isCpu()) {
                if (gpuGroups == null) gpuGroups = new LinkedHashMap<>();
                gpuGroups.computeIfAbsent(s.step, k -> new ArrayList<>()).add(i);
            } else if (p.dtype() == DType.F64) {
                Reference.update(p.f64(), g.f64(), s.expAvg.f64(), s.expAvgSq.f64(), amsgrad ? s.maxExpAvgSq.f64() : null,
                        beta1, beta2, eps, weightDecay, stepSize, bc2Sqrt);
            } else {
                if (work == null) work = new Cpu.Work(params.size());
                work.add(p.f32(), g.f32(), s.expAvg.f32(), s.expAvgSq.f32(), amsgrad ? s.maxExpAvgSq.f32() : null,
                        (float) -stepSize, (float) bc2Sqrt);
            }
        }
        if (work != null) Cpu.run(work, (float) beta1, (float) (1 - beta1), (float) beta2, (float) (1 - beta2),
                (float) eps, (float) weightDecay, weightDecay != 0, amsgrad);
        if (gpuGroups != null) {
            if (gpu == null) gpu = new Gpu();
            for (Map.Entry<Long, List<Integer>> e : gpuGroups.entrySet()) {
                double t = e.getKey();
                double stepSize = lr / (1 - Math.pow(beta1, t));
                double bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
                gpu.run(this, e.getValue(), (float) -stepSize, (float) bc2Sqrt);
            }
        }
    }

    /** float64 reference: PyTorch's update in plain double arithmetic, element by element. */
    static final class Reference {
        static void update(double[] p, double[] grad, double[] m, double[] v, double[] vmax,
                           double beta1, double beta2, double eps, double weightDecay, double stepSize, double bc2Sqrt) {
            for (int i = 0; i < p.length; i++) {
                double g = grad[i];
                if (weightDecay != 0) g = g + weightDecay * p[i];
                m[i] = m[i] * beta1 + (1 - beta1) * g;
                v[i] = v[i] * beta2 + (1 - beta2) * g * g;
                double vv = v[i];
                if (vmax != null) {
                    vmax[i] = Math.max(vmax[i], v[i]);
                    vv = vmax[i];
                }
                double denom = Math.sqrt(vv) / bc2Sqrt + eps;
                p[i] = p[i] + -stepSize * m[i] / denom;
            }
        }
    }

    /** float32: all parameters' chunks in one parallel loop. */
    static final class Cpu {
        /** Elements per chunk: 4 arrays x 64 KiB stay in L2 while one chunk is processed. */
        static final int CHUNK = 1 << 14;

        /** The chunks of one step: parallel arrays, param-indexed and chunk-indexed. */
        static final class Work {
            float[][] p, g, m, v, vmax;
            float[] negStepSize, bc2Sqrt;
            int params;
            int[] chunkParam = new int[16], chunkLo = new int[16];
            int chunks;

            Work(int capacity) {
                p = new float[capacity][];
                g = new float[capacity][];
                m = new float[capacity][];
                v = new float[capacity][];
                vmax = new float[capacity][];
                negStepSize = new float[capacity];
                bc2Sqrt = new float[capacity];
            }

            void add(float[] p, float[] g, float[] m, float[] v, float[] vmax, float negStepSize, float bc2Sqrt) {
                int k = params++;
                this.p[k] = p;
                this.g[k] = g;
                this.m[k] = m;
                this.v[k] = v;
                this.vmax[k] = vmax;
                this.negStepSize[k] = negStepSize;
                this.bc2Sqrt[k] = bc2Sqrt;
                for (int lo = 0; lo < p.length; lo += CHUNK) {
                    if (chunks == chunkParam.length) {
                        chunkParam = java.util.Arrays.copyOf(chunkParam, 2 * chunks);
                        chunkLo = java.util.Arrays.copyOf(chunkLo, 2 * chunks);
                    }
                    chunkParam[chunks] = k;
                    chunkLo[chunks++] = lo;
                }
            }
        }

        static void run(Work w, float b1, float omb1, float b2, float omb2, float eps, float wd, boolean decay, boolean amsgrad) {
            AtomicInteger next = new AtomicInteger();
            int n = w.chunks;
            // One task per worker; each takes chunks from the shared counter until none are left,
            // so a slower core simply does fewer chunks.
            Parallel.forRange(Math.min(Parallel.threads(), n), 1, (lo, hi) -> {
                int c;
                while ((c = next.getAndIncrement()) < n) {
                    int k = w.chunkParam[c], from = w.chunkLo[c];
                    float[] p = w.p[k];
                    int to = Math.min(p.length, from + CHUNK);
                    if (amsgrad) {
                        updateAmsgrad(p, w.g[k], w.m[k], w.v[k], w.vmax[k], from, to, b1, omb1, b2, omb2, eps, wd, decay,
                                w.negStepSize[k], w.bc2Sqrt[k]);
                    } else {
                        update(p, w.g[k], w.m[k], w.v[k], from, to, b1, omb1, b2, omb2, eps, wd, decay,
                                w.negStepSize[k], w.bc2Sqrt[k]);
                    }
                }
            });
        }

        /** One fused pass over [from, to): reads p, g, m, v; writes p, m, v. */
        static void update(float[] p, float[] grad, float[] m, float[] v, int from, int to,
                           float b1, float omb1, float b2, float omb2, float eps, float wd, boolean decay,
                           float negStepSize, float bc2Sqrt) {
            if (decay) {
                for (int i = from; i < to; i++) {
                    float pi = p[i];
                    float g = Math.fma(pi, wd, grad[i]);
                    float mi = Math.fma(g, omb1, m[i] * b1);
                    float vi = Math.fma(omb2 * g, g, v[i] * b2);
                    m[i] = mi;
                    v[i] = vi;
                    float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                    p[i] = pi + negStepSize * mi / denom;
                }
            } else {
                for (int i = from; i < to; i++) {
                    float g = grad[i];
                    float mi = Math.fma(g, omb1, m[i] * b1);
                    float vi = Math.fma(omb2 * g, g, v[i] * b2);
                    m[i] = mi;
                    v[i] = vi;
                    float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                    p[i] = p[i] + negStepSize * mi / denom;
                }
            }
        }

        /** As {@link #update} with vmax = max(vmax, v) in the denominator (reads and writes vmax too). */
        static void updateAmsgrad(float[] p, float[] grad, float[] m, float[] v, float[] vmax, int from, int to,
                                  float b1, float omb1, float b2, float omb2, float eps, float wd, boolean decay,
                                  float negStepSize, float bc2Sqrt) {
            for (int i = from; i < to; i++) {
                float pi = p[i];
                float g = decay ? Math.fma(pi, wd, grad[i]) : grad[i];
                float mi = Math.fma(g, omb1, m[i] * b1);
                float vi = Math.fma(omb2 * g, g, v[i] * b2);
                m[i] = mi;
                v[i] = vi;
                float vm = Math.max(vmax[i], vi);
                vmax[i] = vm;
                float denom = (float) Math.sqrt(vm) / bc2Sqrt + eps;
                p[i] = pi + negStepSize * mi / denom;
            }
        }
    }

    /**
     * CUDA launcher for src/main/cuda/adam.cu ("multi-tensor": one launch updates a whole group).
     *
     * <p>The kernel reads a table of 64-byte slots (p, grad, m, v, vmax pointers, element count,
     * first chunk). The table is a small persistent float32 CUDA tensor used as raw bytes; its slots
     * are written on the device by adam_slot_set_f32 (one tiny launch per parameter), so the device
     * pointers never pass through the host. A table is built once per group of parameter indices
     * and reused while every slot's tensors are the same storages (checked on the host each step,
     * which costs no device work); a changed gradient buffer or state tensor rebuilds it.
     * Parameters with no elements get no slot.
     */
    static final class Gpu {
        /** Elements per work chunk: NCSN_ADAM_CHUNK in adam.cu. */
        static final int CHUNK = 4096;
        /** Floats per table slot: sizeof(NcsnAdamSlot) / 4 in adam.cu. */
        static final int SLOT_FLOATS = 16;
        /** Tables kept at most (groups of different step counts are rare; beyond this all are dropped). */
        private static final int MAX_TABLES = 8;

        private final Map<List<Integer>, Table> tables = new LinkedHashMap<>();

        /** One table: the slot tensors it was built from (by storage and offset) and the device buffer. */
        private static final class Table {
            final Tensor buffer;
            final Tensor[] tensors; // 5 per slot: p, g, m, v, vmax (null without amsgrad)
            final Object[] storages;
            final int[] offsets;
            final int slots;
            final long totalChunks;

            Table(Tensor buffer, Tensor[] tensors, int slots, long totalChunks) {
                this.buffer = buffer;
                this.tensors = tensors;
                this.slots = slots;
                this.totalChunks = totalChunks;
                storages = new Object[tensors.length];
                offsets = new int[tensors.length];
                for (int k = 0; k < tensors.length; k++) {
                    if (tensors[k] == null) continue;
                    storages[k] = tensors[k].storage();
                    offsets[k] = tensors[k].elementOffset();
                }
            }

            boolean matches(Tensor[] now) {
                if (now.length != tensors.length) return false;
                for (int k = 0; k < now.length; k++) {
                    Tensor t = now[k];
                    if (t == null ? storages[k] != null : storages[k] != t.storage() || offsets[k] != t.elementOffset()) return false;
                }
                return true;
            }
        }

        void run(Adam a, List<Integer> indices, float negStepSize, float bc2Sqrt) {
            // The slots' tensors now, in slot order (parameters with elements only).
            List<Tensor> now = new ArrayList<>();
            for (int i : indices) {
                Tensor p = a.params.get(i);
                if (p.numel() == 0) continue;
                ParamState s = a.state[i];
                now.add(p);
                now.add(p.grad());
                now.add(s.expAvg);
                now.add(s.expAvgSq);
                now.add(s.maxExpAvgSq);
            }
            Tensor[] cur = now.toArray(new Tensor[0]);
            int slots = cur.length / 5;
            if (slots == 0) return;
            for (Tensor t : cur) if (t != null) t.requireLive("adam");
            Table table = tables.get(indices);
            if (table == null || !table.matches(cur)) {
                if (table != null) table.buffer.free();
                else if (tables.size() >= MAX_TABLES) clear();
                table = build(cur, slots);
                tables.put(List.copyOf(indices), table);
            }
            int grid = (int) Math.min(table.totalChunks, 32L * CudaContext.get().multiprocessorCount());
            Launch.kernel("adam_multi_f32").ptr(table.buffer).i(table.slots).l(table.totalChunks)
                    .f((float) a.beta1).f((float) (1 - a.beta1)).f((float) a.beta2).f((float) (1 - a.beta2))
                    .f((float) a.eps).f((float) a.weightDecay).i(a.weightDecay != 0 ? 1 : 0).i(a.amsgrad ? 1 : 0)
                    .f(negStepSize).f(bc2Sqrt).grid(grid).block(CudaContext.BLOCK).run();
        }

        private static Table build(Tensor[] cur, int slots) {
            Tensor buffer = Tensor.persistent(Device.CUDA, DType.F32, SLOT_FLOATS * slots);
            long firstChunk = 0;
            for (int k = 0; k < slots; k++) {
                Tensor p = cur[5 * k];
                long n = p.numel();
                Launch.kernel("adam_slot_set_f32").ptr(buffer).i(k).ptr(p).ptr(cur[5 * k + 1]).ptr(cur[5 * k + 2])
                        .ptr(cur[5 * k + 3]).ptr(cur[5 * k + 4]).l(n).l(firstChunk).grid(1).block(32).run();
                firstChunk += (n + CHUNK - 1) / CHUNK;
            }
            return new Table(buffer, cur, slots, firstChunk);
        }

        /** Frees every table buffer (stream order makes this safe while a launch may still read one). */
        void clear() {
            for (Table t : tables.values()) t.buffer.free();
            tables.clear();
        }
    }
}
