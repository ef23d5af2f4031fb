package ncsn.tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import ncsn.autograd.Autograd;

/**
 * Explicit lifetime for temporaries. Every tensor allocated while a scope is open belongs to the
 * innermost one; closing it frees them all (their arrays go back to the {@link BufferPool}) and
 * drops the autograd tape recorded inside it. A training step runs inside one scope, so its
 * activations, saved-for-backward buffers and intermediate gradients are freed deterministically
 * at the end of the step and reused by the next.
 *
 * <pre>{@code
 * try (Scope step = Scope.open()) {
 *     Tensor loss = model.loss(batch);
 *     Autograd.backward(loss);
 *     double value = loss.item();     // read before the scope closes
 * }                                   // everything allocated above is freed here
 * }</pre>
 *
 * Tensors allocated outside any scope (parameters, optimizer state, gradients of leaves) are
 * ordinary heap objects. {@link #keep} moves a tensor out of the scope so it outlives it.
 */
public final class Scope implements AutoCloseable {
    private static final ThreadLocal<ArrayDeque<Scope>> STACK = ThreadLocal.withInitial(ArrayDeque::new);

    private final List<Storage> owned = new ArrayList<>();
    private final int tapeMark;
    private final Thread thread = Thread.currentThread();
    private boolean closed;

    private Scope() {
        this.tapeMark = Autograd.tapeSize();
    }

    public static Scope open() {
        Scope s = new Scope();
        STACK.get().push(s);
        return s;
    }

    /** The innermost open scope of this thread, or null. */
    static Scope current() {
        return STACK.get().peek();
    }

    /** Whether a scope is open on this thread (allocations are then pooled and freed at close). */
    public static boolean active() {
        return current() != null;
    }

    void adopt(Storage s) {
        owned.add(s);
    }

    /** Detaches {@code t}'s storage from this scope so it survives {@link #close()}. */
    public Tensor keep(Tensor t) {
        Storage s = t.storage();
        for (int i = owned.size() - 1; i >= 0; i--) {
            if (owned.get(i) == s) {
                owned.remove(i);
                return t;
            }
        }
        return t;
    }

    /** Number of storages this scope will free at close. */
    public int ownedCount() {
        return owned.size();
    }

    @Override
    public void close() {
        if (closed) return;
        if (Thread.currentThread() != thread)
            throw new IllegalStateException("Scope closed on another thread than the one that opened it");
        ArrayDeque<Scope> stack = STACK.get();
        if (stack.peek() != this)
            throw new IllegalStateException("Scopes must be closed innermost first (try-with-resources)");
        stack.pop();
        closed = true;
        Autograd.truncateTape(tapeMark);
        for (Storage s : owned) s.free();
        owned.clear();
    }
}
