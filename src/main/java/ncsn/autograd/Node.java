package ncsn.autograd;

import ncsn.tensor.Tensor;

/** One recorded op on the tape: what it produced, from what, and how to send gradients back. */
public final class Node {
    final String op;
    final Tensor out;
    final Tensor[] inputs;
    final Autograd.Backward backward;

    Node(String op, Tensor out, Tensor[] inputs, Autograd.Backward backward) {
        this.op = op;
        this.out = out;
        this.inputs = inputs;
        this.backward = backward;
    }

    public String op() {
        return op;
    }
}
