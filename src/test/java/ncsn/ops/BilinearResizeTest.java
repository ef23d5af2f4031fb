package ncsn.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ncsn.autograd.Autograd;
import ncsn.rng.Philox;
import ncsn.tensor.DType;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;
import org.junit.jupiter.api.Test;

/**
 * Bilinear resize, align_corners = true: values worked out by hand from PyTorch's definition
 * (corners map to corners), exactness on linear ramps for any sizes, the backward's adjoint
 * identity and mass conservation, and the error messages.
 */
class BilinearResizeTest {

    /** [[0,1],[2,3]] -> 3x3: corners kept, edges midpoints, centre the mean. */
    @Test
    void twoByTwoToThreeByThree() {
        double[] want = {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3};
        for (DType dt : DType.values())
            assertArrayEquals(want, resize(dt, new double[] {0, 1, 2, 3}, 2, 2, 3, 3), 1e-7, dt.toString());
    }

    /** One row: up 3 -> 5 inserts midpoints; down 4 -> 3 samples 0, 1.5, 3; down 5 -> 3 samples 0, 2, 4. */
    @Test
    void oneRowUpAndDown() {
        for (DType dt : DType.values()) {
            assertArrayEquals(new double[] {2, 3, 4, 0, -4}, resize(dt, new double[] {2, 4, -4}, 1, 3, 1, 5), 1e-7, dt + " 3->5");
            assertArrayEquals(new double[] {1, 6, 8}, resize(dt, new double[] {1, 2, 10, 8}, 1, 4, 1, 3), 1e-6, dt + " 4->3");
            assertArrayEquals(new double[] {1, 3, 5}, resize(dt, new double[] {1, 2, 3, 4, 5}, 1, 5, 1, 3), 1e-7, dt + " 5->3");
            // A 1-row input resized to 3 rows repeats the row (scale (1-1)/(3-1) = 0).
            assertArrayEquals(new double[] {2, 4, 2, 4, 2, 4}, resize(dt, new double[] {2, 4}, 1, 2, 3, 2), 0, dt + " 1xN up");
        }
    }

    /** Output size 1 on an axis samples index 0 of that axis (scale 0), as PyTorch does. */
    @Test
    void outputSizeOneTakesTheFirstSample() {
        double[] x = {7, 1, 2, 3, 4, 5};   // 2x3
        for (DType dt : DType.values()) {
            assertArrayEquals(new double[] {7}, resize(dt, x, 2, 3, 1, 1), 0, dt + " 1x1");
            assertArrayEquals(new double[] {7, 1, 2}, resize(dt, x, 2, 3, 1, 3), 0, dt + " 1x3");
            assertArrayEquals(new double[] {7, 3}, resize(dt, x, 2, 3, 2, 1), 0, dt + " 2x1");
        }
    }

    /** Same size is the identity, bit for bit, and so is its backward. */
    @Test
    void sameSizeIsIdentity() {
        double[] x = new double[2 * 3 * 5 * 4];
        Philox.normal(3, 1, 0, x, 0, x.length);
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor xt = Tensor.wrap(x.clone(), 2, 3, 5, 4).to(dt).requiresGrad(true);
                Tensor out = BilinearResize.apply(xt, 5, 4);
                assertArrayEquals(xt.toDoubleArray(), out.toDoubleArray(), 0, dt.toString());
                Tensor g = Tensor.wrap(x.clone(), 2, 3, 5, 4).to(dt);
                Autograd.backward(out, g);
                assertArrayEquals(g.toDoubleArray(), xt.grad().toDoubleArray(), 0, dt + " backward");
            }
        }
    }

    /** Bilinear interpolation reproduces a linear ramp a*r + b*c exactly: out = a*sy + b*sx, any sizes. */
    @Test
    void linearRampIsReproduced() {
        int[][] sizes = {{3, 5, 7, 9}, {9, 7, 4, 3}, {16, 16, 32, 32}, {5, 4, 1, 6}, {6, 2, 11, 1}};
        for (int[] sz : sizes) {
            int h = sz[0], w = sz[1], oh = sz[2], ow = sz[3];
            double[] x = new double[h * w];
            for (int r = 0; r < h; r++) for (int c = 0; c < w; c++) x[r * w + c] = 3 * r - 2 * c;
            for (DType dt : DType.values()) {
                double[] out = resize(dt, x, h, w, oh, ow);
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++) {
                        double sy = oh > 1 ? i * (h - 1.0) / (oh - 1) : 0, sx = ow > 1 ? j * (w - 1.0) / (ow - 1) : 0;
                        assertEquals(3 * sy - 2 * sx, out[i * ow + j], 1e-5, dt + " " + java.util.Arrays.toString(sz) + " (" + i + "," + j + ")");
                    }
            }
        }
    }

    /** The backward is the adjoint (float32, NCSN's 16 -> 32 and a downsample), and conserves the gradient's sum. */
    @Test
    void backwardIsTheAdjointAndConservesMass() {
        PoolTest.checkAdjoint(t -> BilinearResize.apply(t, 32, 32), new int[] {2, 3, 16, 16}, new int[] {2, 3, 32, 32});
        PoolTest.checkAdjoint(t -> BilinearResize.apply(t, 4, 3), new int[] {1, 2, 9, 7}, new int[] {1, 2, 4, 3});
        for (DType dt : DType.values()) {
            try (Scope s = Scope.open()) {
                Tensor xt = Tensor.zeros(dt, 1, 2, 3, 5).requiresGrad(true);
                Tensor out = BilinearResize.apply(xt, 7, 4);
                double[] g = new double[out.numel()];
                Philox.normal(5, 1, 0, g, 0, g.length);
                Tensor gt = Tensor.wrap(g, out.shape()).to(dt);
                Autograd.backward(out, gt);
                double sumG = 0, sumDx = 0;
                for (double v : gt.toDoubleArray()) sumG += v;
                for (double v : xt.grad().toDoubleArray()) sumDx += v;
                assertEquals(sumG, sumDx, 1e-5, dt + ": every output's weights sum to 1");
            }
        }
    }

    @Test
    void badInputsAreNamed() {
        TensorException zero = assertThrows(TensorException.class,
                () -> BilinearResize.apply(Tensor.zeros(DType.F32, 1, 2, 3, 3), 0, 4));
        assertTrue(zero.getMessage().startsWith("resize_bilinear: ") && zero.getMessage().contains("[0, 4]")
                && zero.getMessage().contains("[1, 2, 3, 3]"), zero.getMessage());
        TensorException rank = assertThrows(TensorException.class,
                () -> BilinearResize.apply(Tensor.zeros(DType.F32, 2, 3, 3), 4, 4));
        assertTrue(rank.getMessage().startsWith("resize_bilinear: x must have 4 dimensions"), rank.getMessage());
        TensorException empty = assertThrows(TensorException.class,
                () -> BilinearResize.apply(Tensor.zeros(DType.F64, 1, 2, 0, 3), 4, 4));
        assertTrue(empty.getMessage().contains("empty plane"), empty.getMessage());
        Tensor freed;
        try (Scope s = Scope.open()) {
            freed = Tensor.zeros(DType.F32, 1, 1, 4, 4);
        }
        TensorException gone = assertThrows(TensorException.class, () -> BilinearResize.apply(freed, 8, 8));
        assertTrue(gone.getMessage().startsWith("resize_bilinear: ") && gone.getMessage().contains("freed"), gone.getMessage());
    }

    private static double[] resize(DType dt, double[] x, int h, int w, int oh, int ow) {
        Tensor out = BilinearResize.apply(Tensor.wrap(x.clone(), 1, 1, h, w).to(dt), oh, ow);
        assertTrue(out.hasShape(1, 1, oh, ow), out.toString());
        return out.toDoubleArray();
    }
}
