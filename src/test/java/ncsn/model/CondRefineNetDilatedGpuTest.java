package ncsn.model;

import ncsn.cuda.RequiresGpu;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import ncsn.autograd.Autograd;
import ncsn.rng.Rng;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The network on CUDA ({@link CondRefineNetDilated#to}) against the float64 CPU reference network
 * with the same weights. Skipped, with the probe's reason, on machines without a usable GPU.
 * Tolerance: 1e-3 of max |reference score| (float32 through ~60 convolutions and norms; the op
 * tests hold each op to 1e-4 / 1e-3).
 */
@RequiresGpu
class CondRefineNetDilatedGpuTest {
    static final double REL = 1e-3;


    /** Random x in [0,1) [n, c, size, size], float32 values held in a float64 tensor (exact on both sides). */
    private static Tensor input(int n, int c, int size, long seed) {
        Tensor x32 = new Rng(seed, 7).uniform(Tensor.persistent(DType.F32, n, c, size, size));
        Tensor x = x32.to(DType.F64);
        x32.free();
        return x;
    }

    private static void compare(ModelConfig cfg, int n, int size, int[] labels) {
        CondRefineNetDilated ref = new CondRefineNetDilated(cfg, DType.F64);
        ref.initialize(3);
        // Round the reference's weights to float32 so both networks hold exactly the same numbers.
        CondRefineNetDilated gpu = ref.to(Device.CUDA);
        ref.copyWeightsFrom(gpu.to(Device.CPU));
        Tensor x = input(n, cfg.channels(), size, 11);
        double[] want, got;
        try (Autograd.NoGrad ng = Autograd.noGrad(); Scope s = Scope.open()) {
            want = ref.score(x, labels).toDoubleArray();
            Tensor xd = x.to(Device.CUDA);
            Tensor out = gpu.score(xd, labels);
            assertEquals(Device.CUDA, out.device());
            got = out.toDoubleArray();
        }
        double max = 0, worst = 0;
        int at = -1;
        for (int i = 0; i < want.length; i++) {
            max = Math.max(max, Math.abs(want[i]));
            double d = Math.abs(want[i] - got[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        assertTrue(worst <= REL * max, cfg + " batch " + n + " " + size + "x" + size + ": worst |gpu - ref| = " + worst + " at "
                + at + " (gpu " + got[Math.max(0, at)] + ", ref " + want[Math.max(0, at)] + ") > " + REL + " x max " + max);
        gpu.free();
    }

    @Test
    void scoreOnCudaMatchesTheFloat64Reference() {
        compare(new ModelConfig(1, 8, 3, false), 3, 8, new int[] {0, 2, 1});
    }

    @Test
    void awkwardSizesBatchOneThreeChannelsOddNgf() {
        compare(new ModelConfig(3, 5, 4, false), 1, 10, new int[] {3});
        compare(new ModelConfig(1, 6, 2, true), 2, 6, new int[] {1, 0});
    }

    @Test
    void weightsSurviveTheRoundTripAndInitializeMatchesTheCpu() {
        ModelConfig cfg = new ModelConfig(1, 4, 3, false);
        CondRefineNetDilated cpu = new CondRefineNetDilated(cfg, DType.F32);
        cpu.initialize(5);
        CondRefineNetDilated dev = new CondRefineNetDilated(cfg, DType.F32, Device.CUDA);
        dev.initialize(5);
        assertEquals(Device.CUDA, dev.device());
        CondRefineNetDilated back = dev.to(Device.CPU);
        for (Map.Entry<String, Tensor> e : cpu.parameters().entrySet()) {
            Tensor p = dev.parameters().get(e.getKey());
            assertTrue(p.requiresGrad() && !p.isCpu() && e.getKey().equals(p.name()), e.getKey());
            assertArrayEquals(e.getValue().f32(), back.parameters().get(e.getKey()).f32(), e.getKey());
        }
        dev.free();
    }
}
