package ncsn.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import ncsn.autograd.Autograd;
import ncsn.cuda.CudaContext;
import ncsn.cuda.CudaProbe;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.ops.CondInstanceNormPlus;
import ncsn.ops.Conv2d;
import ncsn.ops.Elementwise;
import ncsn.ops.Elu;
import ncsn.optim.Adam;
import ncsn.rng.Rng;
import ncsn.sample.LangevinUpdate;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The CUDA kernels through the ops' public entry points, as {@code ncsn bench kernels --device cuda}
 * times them (that command is the quicker way: CUDA events, TFLOP/s and GB/s, from the jar). Here
 * every invocation ends with a stream synchronize, so JMH's wall time per op includes one
 * launch-and-wait round trip (a few microseconds: matters only for the elementwise entries).
 *
 * <p>Without a usable GPU every benchmark prints "GpuKernelBench skipped: ..." once from its setup
 * and then measures an empty method (nanoseconds), so the JMH jar builds and runs anywhere.
 *
 * <pre>
 *   conv*         3x3 conv C -> C, padding = dilation; layer {@code <C>ch_<S>x<S>_d<dil>}, FLOPs per op
 *                 2 * N * C * C * 9 * S * S (e.g. 128ch_32x32_d1 at batch 128: 38.65 GFLOP)
 *   convBackward  grad = data (input gradient) or weight (weight + bias gradients); the forward runs in
 *                 an invocation-level setup, so only backward (plus the add into the zeroed leaf) is timed
 *   cin*          CIN++ over x [N, C, S, S], 10 levels
 *   add, eluForward, langevin   [N, 128, 32, 32] (langevin: [N, 3, 32, 32], noise drawn in the kernel)
 *   adam          one step over every parameter of the ngf 128, 3-channel model
 * </pre>
 * Example: {@code java -jar target/benchmarks.jar GpuKernelBench -p layer=128ch_32x32_d1 -f 1 -wi 2 -i 3}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GpuKernelBench {
    static final long SEED = 99;

    /** True (after printing why, once per state) when there is no GPU to run on. */
    static boolean skip(String what) {
        if (CudaProbe.available()) return false;
        System.out.println("GpuKernelBench skipped (" + what + "): no usable GPU (" + CudaProbe.reason() + ")");
        return true;
    }

    static Tensor random(long stream, int... shape) {
        Tensor t = Tensor.persistent(Device.CUDA, DType.F32, shape);
        new Rng(SEED, stream).normal(t);
        return t;
    }

    static void free(Tensor... ts) {
        for (Tensor t : ts) if (t != null && t.isLive()) t.free();
    }

    /** Conv operands: x, gy [N, C, S, S], w [C, C, 3, 3], b [C]. */
    @State(Scope.Thread)
    public static class Conv {
        @Param({"64ch_32x32_d1", "64ch_32x32_d2", "128ch_32x32_d1", "128ch_16x16_d1", "128ch_16x16_d2", "128ch_16x16_d4"})
        public String layer;

        @Param({"128"})
        public int batch;

        boolean skipped;
        int dil;
        Tensor x, w, b, gy;
        CudaContext ctx;

        @Setup(Level.Trial)
        public void allocate() {
            skipped = skip("conv " + layer);
            if (skipped) return;
            String[] parts = layer.split("_"); // 128ch, 32x32, d1
            int c = Integer.parseInt(parts[0].replace("ch", ""));
            int s = Integer.parseInt(parts[1].substring(0, parts[1].indexOf('x')));
            dil = Integer.parseInt(parts[2].substring(1));
            ctx = CudaContext.get();
            x = random(1, batch, c, s, s);
            w = random(2, c, c, 3, 3);
            b = random(3, c);
            gy = random(4, batch, c, s, s);
        }

        @TearDown(Level.Trial)
        public void release() {
            free(x, w, b, gy);
        }
    }

    /** A recorded conv forward per invocation, for timing its backward alone. */
    @State(Scope.Thread)
    public static class ConvGraph extends Conv {
        @Param({"data", "weight"})
        public String grad;

        ncsn.tensor.Scope scope;
        Tensor out;

        @Setup(Level.Invocation)
        public void forward() {
            if (skipped) return;
            boolean data = grad.equals("data");
            x.requiresGrad(data);
            w.requiresGrad(!data);
            b.requiresGrad(!data);
            scope = ncsn.tensor.Scope.open();
            out = Conv2d.apply(x, w, b, dil, dil);
            ctx.synchronize();
        }

        @TearDown(Level.Invocation)
        public void clear() {
            if (skipped) return;
            scope.close();
            for (Tensor t : new Tensor[] {x, w, b}) {
                if (t.grad() != null) t.grad().free();
                t.setGrad(null);
                t.requiresGrad(false);
            }
        }
    }

    @Benchmark
    public void convForward(Conv s) {
        if (s.skipped) return;
        try (Autograd.NoGrad ng = Autograd.noGrad(); ncsn.tensor.Scope sc = ncsn.tensor.Scope.open()) {
            Conv2d.apply(s.x, s.w, s.b, s.dil, s.dil);
            s.ctx.synchronize();
        }
    }

    @Benchmark
    public void convBackward(ConvGraph s) {
        if (s.skipped) return;
        Autograd.backward(s.out, s.gy);
        s.ctx.synchronize();
    }

    /** CIN++ operands: x, gy [N, C, S, S], embed [10, 3C]. */
    @State(Scope.Thread)
    public static class Cin {
        @Param({"64ch_32x32", "128ch_16x16"})
        public String layer;

        @Param({"128"})
        public int batch;

        boolean skipped;
        Tensor x, e, gy;
        int[] labels;
        CudaContext ctx;
        ncsn.tensor.Scope scope;
        Tensor out;

        @Setup(Level.Trial)
        public void allocate() {
            skipped = skip("cin_pp " + layer);
            if (skipped) return;
            String[] parts = layer.split("_");
            int c = Integer.parseInt(parts[0].replace("ch", ""));
            int s = Integer.parseInt(parts[1].substring(0, parts[1].indexOf('x')));
            ctx = CudaContext.get();
            x = random(5, batch, c, s, s);
            e = random(6, 10, 3 * c);
            gy = random(7, batch, c, s, s);
            labels = new int[batch];
            for (int i = 0; i < batch; i++) labels[i] = i % 10;
        }

        @TearDown(Level.Trial)
        public void release() {
            free(x, e, gy);
        }
    }

    /** A recorded CIN++ forward per invocation (x and embed require gradients). */
    @State(Scope.Thread)
    public static class CinGraph extends Cin {
        @Setup(Level.Invocation)
        public void forward() {
            if (skipped) return;
            x.requiresGrad(true);
            e.requiresGrad(true);
            scope = ncsn.tensor.Scope.open();
            out = CondInstanceNormPlus.apply(x, e, labels);
            ctx.synchronize();
        }

        @TearDown(Level.Invocation)
        public void clear() {
            if (skipped) return;
            scope.close();
            for (Tensor t : new Tensor[] {x, e}) {
                if (t.grad() != null) t.grad().free();
                t.setGrad(null);
                t.requiresGrad(false);
            }
        }
    }

    @Benchmark
    public void cinForward(Cin s) {
        if (s.skipped) return;
        try (Autograd.NoGrad ng = Autograd.noGrad(); ncsn.tensor.Scope sc = ncsn.tensor.Scope.open()) {
            CondInstanceNormPlus.apply(s.x, s.e, s.labels);
            s.ctx.synchronize();
        }
    }

    @Benchmark
    public void cinBackward(CinGraph s) {
        if (s.skipped) return;
        Autograd.backward(s.out, s.gy);
        s.ctx.synchronize();
    }

    /** Memory-bound operands: a, b [N, 128, 32, 32]; x, score [N, 3, 32, 32]. */
    @State(Scope.Thread)
    public static class Mem {
        @Param({"128"})
        public int batch;

        boolean skipped;
        Tensor a, b, x, score;
        long offset;
        CudaContext ctx;

        @Setup(Level.Trial)
        public void allocate() {
            skipped = skip("elementwise");
            if (skipped) return;
            ctx = CudaContext.get();
            a = random(8, batch, 128, 32, 32);
            b = random(9, batch, 128, 32, 32);
            x = random(10, batch, 3, 32, 32);
            score = random(11, batch, 3, 32, 32);
        }

        @TearDown(Level.Trial)
        public void release() {
            free(a, b, x, score);
        }
    }

    @Benchmark
    public void add(Mem s) {
        if (s.skipped) return;
        try (Autograd.NoGrad ng = Autograd.noGrad(); ncsn.tensor.Scope sc = ncsn.tensor.Scope.open()) {
            Elementwise.add(s.a, s.b);
            s.ctx.synchronize();
        }
    }

    @Benchmark
    public void eluForward(Mem s) {
        if (s.skipped) return;
        try (Autograd.NoGrad ng = Autograd.noGrad(); ncsn.tensor.Scope sc = ncsn.tensor.Scope.open()) {
            Elu.apply(s.a);
            s.ctx.synchronize();
        }
    }

    @Benchmark
    public void langevin(Mem s) {
        if (s.skipped) return;
        LangevinUpdate.apply(s.x, s.score, 1e-8, SEED, 7, s.offset);
        s.offset += LangevinUpdate.blocksFor(s.x.numel());
        s.ctx.synchronize();
    }

    /** Adam over the CIFAR-10 model's parameters (zero weights, N(0,1) gradients). */
    @State(Scope.Thread)
    public static class AdamState {
        boolean skipped;
        CondRefineNetDilated model;
        Adam adam;
        CudaContext ctx;

        @Setup(Level.Trial)
        public void allocate() {
            skipped = skip("adam");
            if (skipped) return;
            ctx = CudaContext.get();
            model = new CondRefineNetDilated(ModelConfig.cifar10(), DType.F32).to(Device.CUDA);
            List<Tensor> params = new ArrayList<>(model.parameters().values());
            long k = 20;
            for (Tensor p : params) p.setGrad(random(k++, p.shape()));
            adam = new Adam(params, 1e-6, 0.9, 0.999, 1e-8, 0, false);
        }

        @TearDown(Level.Trial)
        public void release() {
            if (skipped) return;
            for (Tensor p : model.parameters().values()) free(p.grad(), p);
            adam.free();
        }
    }

    @Benchmark
    public void adam(AdamState s) {
        if (s.skipped) return;
        s.adam.step();
        s.ctx.synchronize();
    }
}
