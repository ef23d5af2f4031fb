package ncsn.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import ncsn.autograd.Autograd;
import ncsn.ops.AvgPool5;
import ncsn.ops.BilinearResize;
import ncsn.ops.CondInstanceNormPlus;
import ncsn.ops.Conv2d;
import ncsn.ops.Elementwise;
import ncsn.ops.Elu;
import ncsn.ops.MeanPool2;
import ncsn.rng.Philox;
import ncsn.rng.Rng;
import ncsn.tensor.DType;
import ncsn.tensor.Device;
import ncsn.tensor.Scope;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * The NCSN score network s(x, i) of Song &amp; Ermon (2019), CondRefineNetDilated, built from the
 * engine's ops exactly as ../shared/ncsn-spec.md section 3 describes it and as the authors'
 * models/cond_refinenet_dilated.py computes it. With F = ngf, G = 2 ngf, input [N,C,H,W] (H, W even):
 * <pre>
 *   x' = 2x - 1 (unless logit transform)               [N,C,H,W]
 *   begin_conv  C -> F                                 [N,F,H,W]      = h
 *   res1  plain F->F, plain F->F                       [N,F,H,W]      = layer1
 *   res2  down F->G (ConvMeanPool), plain G->G         [N,G,H/2,W/2]  = layer2
 *   res3  down G->G dil 2, plain G->G dil 2            [N,G,H/2,W/2]  = layer3   (no resolution change)
 *   res4  down G->G dil 4, plain G->G dil 4            [N,G,H/2,W/2]  = layer4   (no resolution change)
 *   refine1([layer4])          -> G, start             [N,G,H/2,W/2]
 *   refine2([layer3, refine1]) -> G                    [N,G,H/2,W/2]
 *   refine3([layer2, refine2]) -> F                    [N,F,H/2,W/2]
 *   refine4([layer1, refine3]) -> F, end               [N,F,H,W]      (MSF upsamples refine3's branch)
 *   normalizer CIN++(F), ELU, end_conv F -> C          [N,C,H,W]      = score
 * </pre>
 * Every norm is CIN++ conditioned on the integer noise level; every activation ELU(1).
 *
 * <p>Two facts of the reference worth knowing: (1) for image_size 28 the reference passes
 * {@code adjust_padding=True} to res4's first block, but only the ConvMeanPool branch of
 * ConditionalResidualBlock reads it and that block is dilated, so it takes the dilated branch:
 * the flag changes neither the parameter names nor the computation (checked by
 * make_model_fixtures.py against the reference module at 28x28). (2) the "down" blocks of res3
 * and res4 keep the resolution (dilated convs, padding = dilation) but still own a conv shortcut,
 * since the reference adds one whenever a block resamples.
 *
 * <p>Parameters are persistent named leaves ({@link Tensor#parameter}) under their reference
 * state_dict names, in the reference's state_dict order (module registration order), with
 * identical shapes; see {@link #parameters()} and {@link ModelWeights} for checkpoints.
 *
 * <p>Devices: a model lives on one device ({@link #device()}); its parameters are persistent
 * tensors there. {@link #to(Device)} gives a float32 copy with the same weights on another device
 * (the CPU float64 model stays the reference), and {@link #score} takes inputs on the model's
 * device and allocates its output there. Nothing in the forward pass touches host arrays, so the
 * same code runs on every backend the ops dispatch to.
 */
public final class CondRefineNetDilated {
    /** Philox stream base of {@link #initialize}: parameter k draws from stream INIT_STREAM + k. */
    static final long INIT_STREAM = 0x494E4954_00000000L; // "INIT"

    private final ModelConfig cfg;
    private final DType dtype;
    private final Device device;
    private final LinkedHashMap<String, Tensor> params = new LinkedHashMap<>();
    /** Every conv, for the FLOP count; in registration order. */
    private final List<Conv> convs = new ArrayList<>();

    private final Conv beginConv, endConv;
    private final Norm normalizer;
    private final ResBlock[] res1, res2, res3, res4;
    private final RefineBlock refine1, refine2, refine3, refine4;

    /** Allocates every parameter (zero-filled) on the CPU in {@code dtype}; call {@link #initialize} or load weights. */
    public CondRefineNetDilated(ModelConfig cfg, DType dtype) {
        this(cfg, dtype, Device.CPU);
    }

    /**
     * Allocates every parameter (zero-filled) on {@code device} in {@code dtype} (CUDA holds float32
     * only); call {@link #initialize} or load weights.
     */
    public CondRefineNetDilated(ModelConfig cfg, DType dtype, Device device) {
        if (cfg == null || dtype == null || device == null)
            throw new IllegalArgumentException("CondRefineNetDilated: config, dtype and device are required");
        if (device != Device.CPU && dtype != DType.F32)
            throw new IllegalArgumentException("CondRefineNetDilated: a model on " + device + " is float32 only, not " + dtype);
        this.cfg = cfg;
        this.dtype = dtype;
        this.device = device;
        int c = cfg.channels(), f = cfg.ngf(), g = 2 * cfg.ngf();
        // Registration order of the reference's __init__: begin_conv, normalizer, end_conv,
        // res1..res4, refine1..refine4 (ELU modules hold no parameters).
        beginConv = conv("begin_conv", c, f, 3, true, 1, false);
        normalizer = norm("normalizer", f);
        endConv = conv("end_conv", f, c, 3, true, 1, false);
        res1 = new ResBlock[] {plain("res1.0", f, 1, false), plain("res1.1", f, 1, false)};
        res2 = new ResBlock[] {downMeanPool("res2.0", f, g), plain("res2.1", g, 1, true)};
        res3 = new ResBlock[] {downDilated("res3.0", g, g, 2), plain("res3.1", g, 2, true)};
        res4 = new ResBlock[] {downDilated("res4.0", g, g, 4), plain("res4.1", g, 4, true)};
        refine1 = refine("refine1", new int[] {g}, new boolean[] {true}, g, true, false, true);
        refine2 = refine("refine2", new int[] {g, g}, new boolean[] {true, true}, g, false, false, true);
        refine3 = refine("refine3", new int[] {g, g}, new boolean[] {true, true}, f, false, false, true);
        refine4 = refine("refine4", new int[] {f, f}, new boolean[] {false, true}, f, false, true, false);
    }

    public ModelConfig config() {
        return cfg;
    }

    public DType dtype() {
        return dtype;
    }

    /** Where the parameters live; {@link #score} takes inputs there. */
    public Device device() {
        return device;
    }

    /**
     * A new float32 model with this model's weights on {@code device} (one copy per parameter;
     * gradients are not copied). Always a new model, also for the same device: moving a model
     * between backends is this one call, and the original stays usable.
     */
    public CondRefineNetDilated to(Device device) {
        CondRefineNetDilated m = new CondRefineNetDilated(cfg, DType.F32, device);
        m.copyWeightsFrom(this);
        return m;
    }

    /**
     * Copies every parameter of {@code src} (same config; any device and dtype) into this model's
     * parameters, converting to this model's dtype and device.
     */
    public void copyWeightsFrom(CondRefineNetDilated src) {
        if (!src.cfg.equals(cfg))
            throw new IllegalArgumentException("copyWeightsFrom: the source network (" + src.cfg + ") differs from this one (" + cfg + ")");
        // Tensor.copyFrom converts across devices and dtypes (the CUDA backend widens and narrows float64).
        for (Map.Entry<String, Tensor> e : params.entrySet()) e.getValue().copyFrom(src.params.get(e.getKey()));
    }

    /**
     * Frees every parameter and its gradient now (a device model's memory goes back to the
     * allocator); the model is unusable afterwards. For models dropped after {@link #to}.
     */
    public void free() {
        for (Tensor p : params.values()) {
            if (p.grad() != null) p.grad().free();
            p.free();
        }
    }

    /** Every parameter under its reference state_dict name, in state_dict order (a fresh map, same tensors). */
    public LinkedHashMap<String, Tensor> parameters() {
        return new LinkedHashMap<>(params);
    }

    /** Total number of parameter values. */
    public long parameterCount() {
        long n = 0;
        for (Tensor t : params.values()) n += t.numel();
        return n;
    }

    /** Name to shape of every parameter, in state_dict order. */
    public LinkedHashMap<String, int[]> parameterShapes() {
        LinkedHashMap<String, int[]> m = new LinkedHashMap<>();
        params.forEach((k, v) -> m.put(k, v.shape()));
        return m;
    }

    /**
     * 2 x multiply-adds of every convolution of one forward pass on one h x w image (norms,
     * pools, resizes and activations not counted). Backward costs about twice this.
     */
    public double forwardFlopsPerImage(int h, int w) {
        checkSize(h, w, "forwardFlopsPerImage");
        double total = 0;
        for (Conv cv : convs) {
            int s = cv.halfRes ? 2 : 1;
            total += 2.0 * cv.co * cv.ci * cv.k * cv.k * (double) (h / s) * (w / s);
        }
        return total;
    }

    // ---- initialisation ------------------------------------------------------------------------

    /**
     * PyTorch's default init, drawn with Philox (deterministic per seed; parameter k of the
     * state_dict order uses stream INIT_STREAM + k, so the draws do not depend on dtype):
     * conv weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * kh * kw
     * (what kaiming_uniform(a = sqrt(5)) reduces to); CIN++ tables [L, 3F]: gamma and alpha
     * columns N(1, 0.02), beta columns 0. Gradients are zeroed.
     */
    public void initialize(long seed) {
        if (device != Device.CPU) {
            // Drawn on the host in float32 (per-element device writes would be one copy per value),
            // so a device model starts with exactly the weights of the CPU float32 model.
            CondRefineNetDilated host = new CondRefineNetDilated(cfg, DType.F32);
            host.initialize(seed);
            copyWeightsFrom(host);
            host.free();
            for (Tensor p : params.values()) p.zeroGrad();
            return;
        }
        int k = 0;
        for (Map.Entry<String, Tensor> e : params.entrySet()) {
            String name = e.getKey();
            Tensor p = e.getValue();
            long stream = INIT_STREAM + k++;
            if (name.endsWith(".embed.weight")) {
                int rows = p.dim(0), f3 = p.dim(1), f2 = 2 * (f3 / 3);
                double[] z = new double[rows * f2];
                Philox.normal(seed, stream, 0, z, 0, z.length);
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < f3; j++) p.set(r * f3 + j, j < f2 ? 1.0 + 0.02 * z[r * f2 + j] : 0.0);
            } else {
                // weight [out, in, kh, kw]; a bias takes the fan-in of its conv's weight.
                int[] ws = params.get(name.endsWith(".bias") ? name.substring(0, name.length() - 5) + ".weight" : name).shape();
                double bound = 1.0 / Math.sqrt((double) ws[1] * ws[2] * ws[3]);
                new Rng(seed, stream).uniform(p, -bound, bound);
            }
            p.zeroGrad();
        }
    }

    // ---- forward -------------------------------------------------------------------------------

    /**
     * The score s(x, labels) [N,C,H,W] for x [N,C,H,W] in this model's dtype ([0,1] data, or
     * logit-space data when the config says so) and labels in [0, L). Recorded in autograd when
     * recording; inside {@link Autograd#noGrad()} the intermediates are freed before returning
     * (only the result stays, owned by the caller's scope if one is open). All temporaries come
     * from {@link Tensor#empty}, so a caller's {@link Scope} frees them.
     */
    public Tensor score(Tensor x, int[] labels) {
        checkInput(x, labels);
        if (Autograd.isRecording()) return forward(x, labels);
        // Sampling: nothing is needed for backward, so the activations die with an inner scope.
        Tensor out = Tensor.empty(x.device(), dtype, x.shape());
        try (Scope inner = Scope.open()) {
            out.copyFrom(forward(x, labels));
        }
        return out;
    }

    private Tensor forward(Tensor x, int[] y) {
        Tensor h = cfg.logitTransform() ? x : Elementwise.scale(x, 2.0, -1.0);
        h = beginConv.apply(h);
        Tensor layer1 = chain(res1, h, y);
        Tensor layer2 = chain(res2, layer1, y);
        Tensor layer3 = chain(res3, layer2, y);
        Tensor layer4 = chain(res4, layer3, y);
        Tensor ref1 = refine1.apply(new Tensor[] {layer4}, y, layer4.dim(2), layer4.dim(3));
        Tensor ref2 = refine2.apply(new Tensor[] {layer3, ref1}, y, layer3.dim(2), layer3.dim(3));
        Tensor ref3 = refine3.apply(new Tensor[] {layer2, ref2}, y, layer2.dim(2), layer2.dim(3));
        Tensor out = refine4.apply(new Tensor[] {layer1, ref3}, y, layer1.dim(2), layer1.dim(3));
        return endConv.apply(Elu.apply(normalizer.apply(out, y)));
    }

    private static Tensor chain(ResBlock[] blocks, Tensor x, int[] y) {
        for (ResBlock b : blocks) x = b.apply(x, y);
        return x;
    }

    private void checkInput(Tensor x, int[] labels) {
        String op = "score";
        if (x == null) throw new TensorException(op + ": x is null");
        x.requireLive(op);
        if (x.rank() != 4 || x.dim(0) < 1 || x.dim(1) != cfg.channels())
            throw new TensorException(op + ": x must be [N, " + cfg.channels() + ", H, W] with N >= 1 for a model with "
                    + cfg.channels() + " channel(s), got " + x.describe());
        if (x.dtype() != dtype)
            throw new TensorException(op + ": x " + x.describe() + " is " + x.dtype() + " but the model's parameters are "
                    + dtype + "; convert with x.to(" + dtype.name() + ")");
        if (x.device() != device)
            throw new TensorException(op + ": x " + x.describe() + " is on " + x.device() + " but the model's parameters are on "
                    + device + "; move it with x.to(Device." + device.name() + ") or the model with model.to(Device."
                    + x.device().name() + ")");
        checkSize(x.dim(2), x.dim(3), op);
        if (labels == null || labels.length != x.dim(0))
            throw new TensorException(op + ": expected " + x.dim(0) + " labels (one per image of " + x.describe() + "), got "
                    + (labels == null ? "none" : labels.length));
        for (int i = 0; i < labels.length; i++)
            if (labels[i] < 0 || labels[i] >= cfg.numClasses())
                throw new TensorException(op + ": label " + labels[i] + " of image " + i + " is outside [0, " + cfg.numClasses()
                        + "): the model has " + cfg.numClasses() + " noise levels");
    }

    private static void checkSize(int h, int w, String op) {
        if (h < 2 || w < 2 || (h & 1) != 0 || (w & 1) != 0)
            throw new TensorException(op + ": image size " + h + "x" + w + " is not supported: height and width must be"
                    + " even and at least 2 (res2 halves them with a 2x2 mean pool, as the reference does)");
    }

    // ---- building blocks -------------------------------------------------------------------------

    private Tensor param(String name, int... shape) {
        Tensor t = device == Device.CPU ? Tensor.parameter(name, dtype, shape)
                : Tensor.persistent(device, dtype, shape).requiresGrad(true).name(name);
        if (params.put(name, t) != null) throw new IllegalStateException("duplicate parameter name " + name);
        return t;
    }

    /** A conv k x k (padding = dilation * (k/2)); {@code halfRes}: it runs at H/2 x W/2 (for FLOPs). */
    private Conv conv(String name, int ci, int co, int k, boolean bias, int dilation, boolean halfRes) {
        Conv c = new Conv(param(name + ".weight", co, ci, k, k), bias ? param(name + ".bias", co) : null,
                ci, co, k, dilation * (k / 2), dilation, halfRes);
        convs.add(c);
        return c;
    }

    private Norm norm(String name, int features) {
        return new Norm(param(name + ".embed.weight", cfg.numClasses(), 3 * features));
    }

    // ResBlock registration order (reference): conv1, normalize2, conv2, shortcut, normalize1.

    /** No resampling, in == out (the only plain case here); dilation 1 or d; identity shortcut. */
    private ResBlock plain(String name, int ch, int dil, boolean halfRes) {
        Conv c1 = conv(name + ".conv1", ch, ch, 3, true, dil, halfRes);
        Norm n2 = norm(name + ".normalize2", ch);
        Conv c2 = conv(name + ".conv2", ch, ch, 3, true, dil, halfRes);
        Norm n1 = norm(name + ".normalize1", ch);
        return new ResBlock(n1, c1, n2, c2, null, false);
    }

    /** 'down' without dilation: conv2 and shortcut are ConvMeanPool (params under `.conv.`); halves H, W. */
    private ResBlock downMeanPool(String name, int in, int out) {
        Conv c1 = conv(name + ".conv1", in, in, 3, true, 1, false);
        Norm n2 = norm(name + ".normalize2", in);
        Conv c2 = conv(name + ".conv2.conv", in, out, 3, true, 1, false);
        Conv sc = conv(name + ".shortcut.conv", in, out, 1, true, 1, false);
        Norm n1 = norm(name + ".normalize1", in);
        return new ResBlock(n1, c1, n2, c2, sc, true);
    }

    /** 'down' with dilation d: dilated convs and a dilated conv shortcut; the resolution stays. */
    private ResBlock downDilated(String name, int in, int out, int dil) {
        Conv c1 = conv(name + ".conv1", in, in, 3, true, dil, true);
        Norm n2 = norm(name + ".normalize2", in);
        Conv c2 = conv(name + ".conv2", in, out, 3, true, dil, true);
        Conv sc = conv(name + ".shortcut", in, out, 3, true, dil, true);
        Norm n1 = norm(name + ".normalize1", in);
        return new ResBlock(n1, c1, n2, c2, sc, false);
    }

    /** CondRCUBlock: parameters `{b}_{s}_norm`, `{b}_{s}_conv` (1-based), convs 3x3 without bias. */
    private Rcu rcu(String name, int features, int blocks, boolean halfRes) {
        Norm[] norms = new Norm[blocks * 2];
        Conv[] cs = new Conv[blocks * 2];
        for (int b = 0; b < blocks; b++)
            for (int s = 0; s < 2; s++) {
                String stem = name + "." + (b + 1) + "_" + (s + 1);
                norms[2 * b + s] = norm(stem + "_norm", features);
                cs[2 * b + s] = conv(stem + "_conv", features, features, 3, false, 1, halfRes);
            }
        return new Rcu(norms, cs);
    }

    /**
     * CondRefineBlock. Registration order: adapt_convs, output_convs, msf (convs then norms), crp
     * (convs then norms). {@code inHalf[i]}: input i arrives at half resolution; {@code outHalf}:
     * the block's output size is half resolution.
     */
    private RefineBlock refine(String name, int[] planes, boolean[] inHalf, int features, boolean start, boolean end,
            boolean outHalf) {
        Rcu[] adapt = new Rcu[planes.length];
        for (int i = 0; i < planes.length; i++) adapt[i] = rcu(name + ".adapt_convs." + i, planes[i], 2, inHalf[i]);
        Rcu output = rcu(name + ".output_convs", features, end ? 3 : 1, outHalf);
        Msf msf = null;
        if (!start) {
            Conv[] mc = new Conv[planes.length];
            Norm[] mn = new Norm[planes.length];
            for (int i = 0; i < planes.length; i++) mc[i] = conv(name + ".msf.convs." + i, planes[i], features, 3, true, 1, inHalf[i]);
            for (int i = 0; i < planes.length; i++) mn[i] = norm(name + ".msf.norms." + i, planes[i]);
            msf = new Msf(mn, mc);
        }
        Conv[] cc = new Conv[2];
        Norm[] cn = new Norm[2];
        for (int s = 0; s < 2; s++) cc[s] = conv(name + ".crp.convs." + s, features, features, 3, false, 1, outHalf);
        for (int s = 0; s < 2; s++) cn[s] = norm(name + ".crp.norms." + s, features);
        return new RefineBlock(adapt, msf, new Crp(cn, cc), output);
    }

    /** Conv2d, stride 1: x [N,ci,h,w] -> [N,co,h,w] (padding keeps the size for every conv here). */
    private record Conv(Tensor weight, Tensor bias, int ci, int co, int k, int padding, int dilation, boolean halfRes) {
        Tensor apply(Tensor x) {
            return Conv2d.apply(x, weight, bias, padding, dilation);
        }
    }

    /** CIN++ with its own table embed [L, 3F]. */
    private record Norm(Tensor embed) {
        Tensor apply(Tensor x, int[] y) {
            return CondInstanceNormPlus.apply(x, embed, y);
        }
    }

    /**
     * ConditionalResidualBlock: out = shortcut(x) + conv2(ELU(n2(conv1(ELU(n1(x)))))). With
     * {@code meanPool} (res2.0) conv2 and the 1x1 shortcut are ConvMeanPool: conv, then 2x2 mean.
     */
    private record ResBlock(Norm n1, Conv conv1, Norm n2, Conv conv2, Conv shortcut, boolean meanPool) {
        Tensor apply(Tensor x, int[] y) {
            Tensor h = conv1.apply(Elu.apply(n1.apply(x, y)));
            h = Elu.apply(n2.apply(h, y));
            Tensor sc;
            if (meanPool) {
                h = MeanPool2.apply(conv2.apply(h));
                sc = MeanPool2.apply(shortcut.apply(x));
            } else {
                h = conv2.apply(h);
                sc = shortcut == null ? x : shortcut.apply(x);
            }
            return Elementwise.add(sc, h);
        }
    }

    /** CondRCUBlock: per block b, x = x + conv_b2(ELU(norm_b2(conv_b1(ELU(norm_b1(x)))))). */
    private record Rcu(Norm[] norms, Conv[] convs) {
        Tensor apply(Tensor x, int[] y) {
            for (int b = 0; b < convs.length / 2; b++) {
                Tensor r = x;
                for (int s = 0; s < 2; s++) x = convs[2 * b + s].apply(Elu.apply(norms[2 * b + s].apply(x, y)));
                x = Elementwise.add(x, r);
            }
            return x;
        }
    }

    /** CondMSFBlock: sum_i resize(conv_i(norm_i(x_i)), h, w), bilinear align_corners; no activation. */
    private record Msf(Norm[] norms, Conv[] convs) {
        Tensor apply(Tensor[] xs, int[] y, int h, int w) {
            Tensor sum = null;
            for (int i = 0; i < xs.length; i++) {
                Tensor t = convs[i].apply(norms[i].apply(xs[i], y));
                // align_corners resize to the same size is the identity: skip the copy.
                if (t.dim(2) != h || t.dim(3) != w) t = BilinearResize.apply(t, h, w);
                sum = sum == null ? t : Elementwise.add(sum, t);
            }
            return sum;
        }
    }

    /** CondCRPBlock: x = ELU(x); path = x; per stage path = conv(avgpool5(norm(path))), x = path + x. */
    private record Crp(Norm[] norms, Conv[] convs) {
        Tensor apply(Tensor x, int[] y) {
            x = Elu.apply(x);
            Tensor path = x;
            for (int s = 0; s < convs.length; s++) {
                path = convs[s].apply(AvgPool5.apply(norms[s].apply(path, y)));
                x = Elementwise.add(path, x);
            }
            return x;
        }
    }

    /** CondRefineBlock: adapt each input (RCU x2), fuse (MSF) when several, CRP, output RCU. */
    private record RefineBlock(Rcu[] adapt, Msf msf, Crp crp, Rcu output) {
        Tensor apply(Tensor[] xs, int[] y, int h, int w) {
            Tensor[] hs = new Tensor[xs.length];
            for (int i = 0; i < xs.length; i++) hs[i] = adapt[i].apply(xs[i], y);
            Tensor t = msf != null ? msf.apply(hs, y, h, w) : hs[0];
            return output.apply(crp.apply(t, y), y);
        }
    }

    // ---- checkpoint shapes -----------------------------------------------------------------------

    /**
     * The config of the network whose state_dict has these shapes: channels and ngf from
     * {@code begin_conv.weight} [ngf, C, 3, 3], L from {@code normalizer.embed.weight} [L, 3 ngf].
     * Keys may carry DataParallel's {@code module.} prefix. Throws an IllegalArgumentException
     * saying which key is missing or malformed.
     */
    public static ModelConfig inferConfig(Map<String, int[]> shapes, boolean logitTransform) {
        int[] begin = lookup(shapes, "begin_conv.weight");
        int[] norm = lookup(shapes, "normalizer.embed.weight");
        if (begin == null || norm == null) {
            List<String> missing = new ArrayList<>();
            if (begin == null) missing.add("'begin_conv.weight'");
            if (norm == null) missing.add("'normalizer.embed.weight'");
            throw new IllegalArgumentException("cannot infer the model size: no " + String.join(" and no ", missing)
                    + " among the " + shapes.size() + " tensors" + sample(shapes.keySet())
                    + " (not a CondRefineNetDilated state_dict?)");
        }
        if (begin.length != 4 || begin[2] != 3 || begin[3] != 3)
            throw new IllegalArgumentException("cannot infer the model size: 'begin_conv.weight' has shape "
                    + Arrays.toString(begin) + ", expected [ngf, channels, 3, 3]");
        int ngf = begin[0], channels = begin[1];
        if (norm.length != 2 || norm[1] != 3 * ngf)
            throw new IllegalArgumentException("cannot infer the model size: 'normalizer.embed.weight' has shape "
                    + Arrays.toString(norm) + ", expected [L, 3 * ngf] = [L, " + 3 * ngf + "] for ngf " + ngf
                    + " (from 'begin_conv.weight' " + Arrays.toString(begin) + ")");
        return new ModelConfig(channels, ngf, norm[0], logitTransform);
    }

    private static int[] lookup(Map<String, int[]> shapes, String name) {
        int[] s = shapes.get(name);
        return s != null ? s : shapes.get(ModelWeights.DATA_PARALLEL_PREFIX + name);
    }

    private static String sample(java.util.Collection<String> names) {
        if (names.isEmpty()) return "";
        List<String> l = new ArrayList<>(names);
        Collections.sort(l);
        return " (" + String.join(", ", l.subList(0, Math.min(8, l.size()))) + (l.size() > 8 ? ", ..." : "") + ")";
    }

    @Override
    public String toString() {
        return "CondRefineNetDilated(" + cfg + ", " + dtype + ", " + device + ", " + parameterCount() + " parameters)";
    }
}
