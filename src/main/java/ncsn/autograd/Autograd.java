package ncsn.autograd;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import ncsn.tensor.DType;
import ncsn.tensor.Storage;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * Reverse-mode automatic differentiation on a per-thread tape.
 *
 * <p>Each op that has an input requiring a gradient appends a {@link Node} to the tape (creation
 * order is a valid topological order). {@link #backward} walks the tape in reverse, hands each
 * node the gradient of its output, and accumulates the returned input gradients: into a map for
 * intermediates, into {@link Tensor#grad()} for leaves (parameters). The tape and every node
 * reference are dropped afterwards, so no graph is retained. Inside {@link #noGrad()} nothing is
 * recorded (sampling).
 */
public final class Autograd {
    /** Maps the gradient of a node's output to the gradients of its inputs (null where not needed). */
    @FunctionalInterface
    public interface Backward {
        Tensor[] apply(Tensor gradOut);
    }

    private static final class State {
        final ArrayList<Node> tape = new ArrayList<>();
        int noGradDepth;
    }

    private static final ThreadLocal<State> STATE = ThreadLocal.withInitial(State::new);

    private Autograd() {}

    /** True when ops record onto the tape (not inside {@link #noGrad()}). */
    public static boolean isRecording() {
        return STATE.get().noGradDepth == 0;
    }

    /** True when recording and any input requires a gradient: the op must then call {@link #record}. */
    public static boolean needsGrad(Tensor... inputs) {
        if (!isRecording()) return false;
        for (Tensor t : inputs) if (t != null && t.requiresGrad()) return true;
        return false;
    }

    /** Appends a node producing {@code out} from {@code inputs}; no-op when not {@link #needsGrad}. */
    public static void record(String op, Tensor out, Tensor[] inputs, Backward backward) {
        if (!needsGrad(inputs)) return;
        Node n = new Node(op, out, inputs, backward);
        out.setNode(n);
        STATE.get().tape.add(n);
    }

    /** A region where nothing is recorded; close it to resume (try-with-resources). */
    public static NoGrad noGrad() {
        STATE.get().noGradDepth++;
        return new NoGrad();
    }

    public static final class NoGrad implements AutoCloseable {
        private boolean closed;

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                STATE.get().noGradDepth--;
            }
        }
    }

    public static int tapeSize() {
        return STATE.get().tape.size();
    }

    /** Drops nodes recorded after {@code mark} (a closing {@link ncsn.tensor.Scope} frees their tensors). */
    public static void truncateTape(int mark) {
        ArrayList<Node> tape = STATE.get().tape;
        for (int i = tape.size() - 1; i >= mark && i >= 0; i--) tape.remove(i).out.setNode(null);
    }

    /** Backpropagates from a one-element tensor (seeded with 1). */
    public static void backward(Tensor loss) {
        TensorException.check(loss.numel() == 1, "backward",
                "needs a one-element loss, got " + loss.describe() + " (pass an explicit gradient for other shapes)");
        Tensor seed = Tensor.empty(loss.device(), loss.dtype(), loss.shape()).fill(1.0);
        backward(loss, seed);
    }

    /** Backpropagates {@code gradOut} (same shape as {@code out}) through the recorded graph. */
    public static void backward(Tensor out, Tensor gradOut) {
        out.requireLive("backward");
        TensorException.check(out.sameShape(gradOut), "backward",
                "gradient " + gradOut.describe() + " does not match output " + out.describe());
        TensorException.check(out.dtype() == gradOut.dtype(), "backward",
                "gradient dtype " + gradOut.dtype() + " differs from output dtype " + out.dtype());
        TensorException.check(out.device() == gradOut.device(), "backward",
                "gradient on " + gradOut.device() + " but output " + out.describe() + " on " + out.device());
        State st = STATE.get();
        ArrayList<Node> tape = st.tape;
        boolean[] done = new boolean[tape.size()];
        boolean ok = false;
        try {
            if (out.node() == null) {
                requireGraph(out, "the output");
                if (out.requiresGrad()) accumulateLeaf(out, gradOut);
                ok = true;
                return;
            }
            IdentityHashMap<Tensor, Tensor> grads = new IdentityHashMap<>();
            grads.put(out, gradOut);
            long before = Storage.madeSoFar(); // storages made after this are this pass's own
            ArrayList<Tensor> spent = new ArrayList<>();
            Set<Storage> live = Collections.newSetFromMap(new IdentityHashMap<>());
            for (int i = tape.size() - 1; i >= 0; i--) {
                Node n = tape.get(i);
                Tensor g = grads.remove(n.out);
                if (g == null) continue;
                done[i] = true;
                Tensor[] gin = n.backward.apply(g);
                spent.add(g);
                for (int k = 0; k < n.inputs.length; k++) {
                    Tensor in = n.inputs[k];
                    Tensor gk = gin[k];
                    if (gk == null) continue;
                    spent.add(gk);
                    if (in == null || !in.requiresGrad()) continue;
                    if (!gk.sameShape(in) || gk.dtype() != in.dtype() || gk.device() != in.device())
                        throw new IllegalStateException("backward of '" + n.op + "' returned gradient "
                                + gk.describe() + " for input " + in.describe());
                    if (in.node() == null) {
                        requireGraph(in, "an input of '" + n.op + "'");
                        accumulateLeaf(in, gk);
                    } else {
                        Tensor old = grads.get(in);
                        if (old != null) spent.add(old);
                        grads.put(in, old == null ? gk : sum(old, gk));
                    }
                }
                freeSpent(spent, grads, live, before);
            }
            ok = true;
        } finally {
            // No retained graph: the nodes this pass went through are dropped (all of them if it
            // failed); nodes of other, unrelated graphs stay until their own backward or scope end.
            int w = 0;
            for (int i = 0; i < tape.size(); i++) {
                Node n = tape.get(i);
                if (!ok || (i < done.length && done[i])) n.out.releaseNode();
                else tape.set(w++, n);
            }
            tape.subList(w, tape.size()).clear();
        }
    }

    /**
     * Frees, during the pass, the gradients it made and no longer needs: a node's output
     * gradient once its backward ran, gradients added into leaves or into a sum. Without this,
     * every intermediate gradient of a training step stayed allocated until the step's scope
     * closed, as much memory again as the activations. Freed only when the storage is a pooled
     * CPU temporary made by this pass (never the caller's gradOut, an activation or a leaf's
     * grad) and no gradient still waiting in {@code grads} shares it (a backward may pass g
     * through, or a view of it).
     */
    private static void freeSpent(ArrayList<Tensor> spent, IdentityHashMap<Tensor, Tensor> grads, Set<Storage> live,
                                  long before) {
        live.clear(); // scratch set, reused across nodes
        for (Tensor t : grads.values()) live.add(t.storage());
        for (Tensor t : spent) {
            Storage s = t.storage();
            if (s.serial() > before && s.isPooled() && t.isCpu() && !live.contains(s)) s.free();
        }
        spent.clear();
    }

    private static void requireGraph(Tensor t, String what) {
        if (t.graphReleased())
            throw new TensorException("backward: " + what + ", " + t.describe() + ", was produced by a graph that an "
                    + "earlier backward already consumed (graphs are not retained); add the losses and call "
                    + "backward once, or run the forward again");
    }

    private static void accumulateLeaf(Tensor leaf, Tensor g) {
        Tensor acc = leaf.grad();
        if (acc == null) {
            acc = Tensor.persistent(leaf.device(), leaf.dtype(), leaf.shape());
            leaf.setGrad(acc);
        }
        addInto(acc, g);
    }

    /** A fresh tensor a + b (the operands may be aliased by other nodes, so never in place). */
    private static Tensor sum(Tensor a, Tensor b) {
        Tensor s = a.copy();
        addInto(s, b);
        return s;
    }

    private static void addInto(Tensor acc, Tensor g) {
        if (!acc.isCpu()) {
            ncsn.tensor.DeviceBackend.of(acc.device()).addInto(acc, g);
            return;
        }
        int n = acc.numel();
        // Across the cores: a fan-out's gradients (every residual input) are whole activations.
        if (acc.dtype() == DType.F64) {
            double[] a = acc.f64(), b = g.f64();
            ncsn.cpu.Parallel.forRange(n, ADD_GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) a[i] += b[i];
            });
        } else {
            float[] a = acc.f32(), b = g.f32();
            ncsn.cpu.Parallel.forRange(n, ADD_GRAIN, (lo, hi) -> {
                for (int i = lo; i < hi; i++) a[i] += b[i];
            });
        }
    }

    private static final int ADD_GRAIN = 1 << 15;

    /** Zeroes the gradients of the given leaves. */
    public static void zeroGrad(Iterable<Tensor> params) {
        for (Tensor p : params) p.zeroGrad();
    }

    static String shape(Tensor t) {
        return Arrays.toString(t.shape());
    }
}
