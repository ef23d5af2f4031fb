package ncsn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.Callable;
import ncsn.autograd.Autograd;
import ncsn.cuda.CudaError;
import ncsn.io.SafeTensors;
import ncsn.io.SafeTensorsException;
import ncsn.model.CondRefineNetDilated;
import ncsn.model.ModelConfig;
import ncsn.model.ModelWeights;
import ncsn.ops.AnnealedDsm;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ncsn score}: runs a score network checkpoint on one batch and writes what PyTorch would
 * compute, for cross-checking checkpoints and engines.
 * <pre>
 *   --checkpoint W.safetensors   weights under the reference state_dict names (sizes inferred)
 *   --batch B.safetensors        x [N,C,H,W] (F32/F64), labels [N] (integer), optional noise [N,C,H,W]
 *   --out O.safetensors          score [N,C,H,W] = s(x, labels); with noise also
 *                                loss [1]   annealed DSM at x + sigma[label] * noise (spec section 2),
 *                                grad.x     d loss / d x,
 *                                grad.NAME  d loss / d parameter, for every parameter
 * </pre>
 * Bad input (missing file or key, wrong shapes, labels out of range) prints one message naming
 * the argument or file and exits 2. {@code --device cuda} (float32 only) runs the network, loss and
 * backward on the GPU and copies the results to the host for the file; {@code --device cuda}
 * without a usable GPU is bad input (exit 2, with the probe's reason).
 */
@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Score a batch with a CondRefineNetDilated checkpoint; with noise in the batch also the"
                + " annealed DSM loss and its gradients with respect to every parameter and x.")
public final class ScoreCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "W.safetensors",
            description = "Model weights under the reference parameter names (a `module.` prefix is accepted;"
                    + " entries under optim./ema./rng./train. are ignored).")
    Path checkpoint;

    @Option(names = "--batch", required = true, paramLabel = "B.safetensors",
            description = "x [N,C,H,W] float32 (or float64), labels [N] int64/int32 in [0, L), optional noise [N,C,H,W].")
    Path batch;

    @Option(names = "--out", required = true, paramLabel = "O.safetensors", description = "Output file (written atomically).")
    Path out;

    @Option(names = "--float64", description = "Compute in float64 (the reference ops) instead of float32 (CPU only).")
    boolean float64;

    @Option(names = "--device", paramLabel = "cpu|cuda|auto",
            description = "Where to compute: cpu (default, bit-identical to earlier versions), cuda, or auto (CUDA when"
                    + " usable, else the CPU). Default: ${DEFAULT-VALUE}.")
    String device = "cpu";

    @Option(names = "--logit-transform", negatable = true, description = "x is in logit space: skip the network's 2x - 1"
            + " input mapping (--no-logit-transform: it is not). Default: the checkpoint's metadata `logit_transform`, else not.")
    Boolean logitTransform;

    @Option(names = "--sigma-begin", paramLabel = "S", description = "Largest noise level (default: ${DEFAULT-VALUE}).")
    double sigmaBegin = 1.0;

    @Option(names = "--sigma-end", paramLabel = "S", description = "Smallest noise level (default: ${DEFAULT-VALUE}).")
    double sigmaEnd = 0.01;

    @Option(names = "--anneal-power", paramLabel = "P", description = "Loss weight sigma^P (default: ${DEFAULT-VALUE}).")
    double annealPower = 2.0;

    /** A problem with the user's input: printed as one line, exit code 2. */
    private static final class BadInput extends Exception {
        BadInput(String message) {
            super(message);
        }
    }

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        try {
            return run(spec.commandLine().getOut());
        } catch (BadInput | SafeTensorsException e) {
            err.println("score: " + e.getMessage());
            err.flush();
            return CommandLine.ExitCode.USAGE;
        } catch (IOException e) {
            err.println("score: cannot write --out " + out + ": " + e.getMessage());
            err.flush();
            return CommandLine.ExitCode.USAGE;
        } catch (CudaError e) {
            err.println("score: " + e.getMessage());
            err.flush();
            return 1;
        } catch (OutOfMemoryError e) {
            err.println("score: out of memory for this batch and model; use a smaller batch or raise the heap (NCSN_HEAP=16g bin/ncsn ...)");
            err.flush();
            return 1;
        }
    }

    private int run(PrintWriter stdout) throws BadInput, IOException {
        DType dt = float64 ? DType.F64 : DType.F32;
        Device dev;
        try {
            dev = LangevinOptions.resolveDevice(device);
        } catch (IllegalArgumentException e) {
            throw new BadInput(e.getMessage());
        }
        if (float64 && dev != Device.CPU)
            throw new BadInput("--float64 runs on the CPU only (the GPU backend is float32); drop --float64 or use --device cpu");
        SafeTensors.Contents ckpt = readArg("--checkpoint", checkpoint);
        boolean logit = logitTransform != null ? logitTransform
                : "true".equals(ckpt.metadata().get(ModelWeights.META_LOGIT_TRANSFORM));
        CondRefineNetDilated model;
        try {
            model = ModelWeights.fromContents(ckpt, dt, logit);
        } catch (SafeTensorsException e) {
            throw new BadInput("--checkpoint " + e.getMessage());
        }
        if (dev != Device.CPU) {
            CondRefineNetDilated host = model;
            model = host.to(dev);
            host.free();
        }
        ModelConfig cfg = model.config();

        SafeTensors.Contents b = readArg("--batch", batch);
        SafeTensors.Entry xe = need(b, "x"), le = need(b, "labels"), ne = b.get("noise");
        long[] xs = xe.shape();
        if (xs.length != 4 || xs[0] < 1 || xs[1] != cfg.channels())
            throw bad("tensor 'x' has shape " + Arrays.toString(xs) + "; the checkpoint's model needs [N, " + cfg.channels()
                    + ", H, W] with N >= 1");
        if (!xe.dtype().equals("F32") && !xe.dtype().equals("F64"))
            throw bad("tensor 'x' is " + xe.dtype() + "; expected F32 (or F64)");
        if (xs[2] < 2 || xs[3] < 2 || xs[2] % 2 != 0 || xs[3] % 2 != 0)
            throw bad("tensor 'x' has shape " + Arrays.toString(xs) + ": height and width must be even and at least 2");
        if (le.shape().length != 1 || le.shape()[0] != xs[0])
            throw bad("tensor 'labels' has shape " + Arrays.toString(le.shape()) + "; expected [" + xs[0] + "] (one per image of x)");
        int[] labels;
        try {
            labels = le.toIntArray();
        } catch (IllegalArgumentException e) {
            throw bad(e.getMessage() + " (labels must be int64 or int32)");
        }
        for (int i = 0; i < labels.length; i++)
            if (labels[i] < 0 || labels[i] >= cfg.numClasses())
                throw bad("label " + labels[i] + " of image " + i + " is outside [0, " + cfg.numClasses() + "): the checkpoint "
                        + checkpoint + " has " + cfg.numClasses() + " noise levels");
        if (ne != null) {
            if (!Arrays.equals(ne.shape(), xs))
                throw bad("tensor 'noise' has shape " + Arrays.toString(ne.shape()) + " but 'x' has " + Arrays.toString(xs));
            if (!ne.dtype().equals("F32") && !ne.dtype().equals("F64"))
                throw bad("tensor 'noise' is " + ne.dtype() + "; expected F32 (or F64)");
        }
        double[] sigmas;
        try {
            sigmas = AnnealedDsm.sigmas(sigmaBegin, sigmaEnd, cfg.numClasses());
        } catch (IllegalArgumentException e) {
            throw new BadInput("--sigma-begin/--sigma-end: " + e.getMessage());
        }

        SafeTensors.Writer w = new SafeTensors.Writer()
                .meta("checkpoint", checkpoint.toString())
                .meta("batch", batch.toString())
                .meta("model", cfg.toString())
                .meta("dtype", dt.toString())
                .meta("device", dev.toString());
        try (Scope s = Scope.open()) {
            Tensor x = onDevice(xe.toTensor(dt), dev).name("x");
            try (Autograd.NoGrad ng = Autograd.noGrad()) {
                w.put("score", host(model.score(x, labels)));
            }
            if (ne != null) {
                Tensor noise = onDevice(ne.toTensor(dt), dev);
                x.requiresGrad(true);
                Tensor perturbed = AnnealedDsm.perturb(x, noise, labels, sigmas);
                Tensor loss = AnnealedDsm.loss(model.score(perturbed, labels), noise, labels, sigmas, annealPower);
                Autograd.backward(loss);
                w.put("loss", host(loss));
                w.put("grad.x", host(x.grad()));
                for (Map.Entry<String, Tensor> p : model.parameters().entrySet()) {
                    Tensor g = p.getValue().grad();
                    w.put("grad." + p.getKey(), host(g != null ? g : Tensor.zerosLike(p.getValue())));
                }
                stdout.printf("loss %.9g%n", loss.item());
            }
        }
        w.write(out);
        stdout.printf("wrote %s (%s, %s on %s, %d images%s)%n", out, cfg, dt, dev, labels.length,
                ne != null ? ", loss and gradients" : "");
        stdout.flush();
        return CommandLine.ExitCode.OK;
    }

    /** t on dev (a scope-owned copy when dev is not the CPU). */
    private static Tensor onDevice(Tensor t, Device dev) {
        return dev == Device.CPU ? t : t.to(dev);
    }

    /** t readable on the host (the writer copies the host array): a scope-owned copy of a device tensor. */
    private static Tensor host(Tensor t) {
        return t.isCpu() ? t : t.to(Device.CPU);
    }

    private static SafeTensors.Contents readArg(String option, Path file) throws BadInput {
        try {
            return SafeTensors.read(file);
        } catch (SafeTensorsException e) {
            throw new BadInput(option + " " + e.getMessage());
        }
    }

    private SafeTensors.Entry need(SafeTensors.Contents b, String name) throws BadInput {
        SafeTensors.Entry e = b.get(name);
        if (e == null) throw bad("has no tensor '" + name + "' (it has " + b.entries().keySet() + ")");
        return e;
    }

    private BadInput bad(String problem) {
        return new BadInput("--batch " + batch + ": " + problem);
    }
}
