package ncsn.ops;

import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import ncsn.autograd.Autograd;
import ncsn.cpu.Parallel;
import ncsn.cuda.Launch;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import ncsn.tensor.TensorException;

/**
 * CIN++ (conditional instance normalisation ++, spec section 4) as one fused op "cin_pp".
 *
 * <p>x [N,C,H,W], embedding table e [L,3C] = [gamma | alpha | beta], labels y [N] in [0,L).
 * With P = H*W, per image n and channel c:
 * <pre>
 *   mu_nc  = mean_p x                     var_nc = mean_p (x - mu_nc)^2        (biased)
 *   m_n    = mean_c mu_nc                 v_n    = sum_c (mu_nc - m_n)^2 / (C-1) (unbiased)
 *   xhat   = (x - mu_nc) / sqrt(var_nc + 1e-5)
 *   mhat_nc = (mu_nc - m_n) / sqrt(v_n + 1e-5)
 *   out    = gamma[y_n,c] * (xhat + alpha[y_n,c] * mhat_nc) + beta[y_n,c]
 * </pre>
 * Backward (closed form used by the fast kernel; the reference applies the chain rule step by
 * step instead). With dxhat = dout*gamma and dmhat_c = gamma*alpha*sum_p dout:
 * <pre>
 *   dmu_c  = rs * (dmhat_c - mean_c dmhat - mhat_c * sum_c(dmhat*mhat) / (C-1))     rs = 1/sqrt(v+eps)
 *   dx     = rstd * (dxhat - mean_p dxhat - xhat * mean_p(dxhat*xhat)) + dmu_c / P
 *   dgamma = sum_p dout*(xhat + alpha*mhat)   dalpha = gamma*mhat*sum_p dout   dbeta = sum_p dout
 * </pre>
 * The embedding gradient is scatter-added into row y_n (images may share a label; rows of unused
 * labels get zero). C must be at least 2: the unbiased variance over one channel is undefined.
 *
 * <p>Paths: float64 {@link Reference}, float32 {@link Cpu}, and CUDA {@link Gpu} (kernels in
 * src/main/cuda/cin_plus.cu: the same closed forms, statistics in double, the embedding gradient
 * summed per label row in image order without atomics).
 */
public final class CondInstanceNormPlus {
    static final String OP = "cin_pp";
    /** Added to both variances (PyTorch's InstanceNorm2d default, as in the reference code). */
    static final double EPS = 1e-5;

    private CondInstanceNormPlus() {}

    /**
     * Uploads {@code labels} to {@code device} once, as a persistent float32 tensor that CIN++ on
     * this thread then reuses (instead of uploading) for every call with equal labels while it is
     * live: a forward pass with these labels copies nothing from the host, as CUDA graph capture
     * requires (ncsn.sample.LangevinGraph). The caller frees the returned tensor; afterwards CIN++
     * uploads as usual. On the CPU there is nothing to upload: returns null.
     */
    public static Tensor preloadLabels(int[] labels, ncsn.tensor.Device device) {
        if (labels == null) throw new TensorException(OP + ": labels are null");
        if (device == ncsn.tensor.Device.CPU) return null;
        return Gpu.preload(labels.clone(), device);
    }

    /**
     * out [N,C,H,W] = CIN++(x [N,C,H,W]; embed [L,3C], labels [N]). x and embed share a dtype.
     * The labels array is copied (later changes by the caller do not affect backward).
     */
    public static Tensor apply(Tensor x, Tensor embed, int[] labels) {
        OpChecks.live(OP, x, embed);
        OpChecks.rank(OP, "x", x, 4);
        OpChecks.rank(OP, "embed", embed, 2);
        int n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
        if (c < 2)
            throw new TensorException(OP + ": x " + x.describe() + " has " + c + " channel(s); CIN++ needs at least 2"
                    + " (the unbiased variance of the channel means divides by C-1)");
        if (h * w == 0)
            throw new TensorException(OP + ": x " + x.describe() + " has empty planes; mean and variance over H,W are undefined");
        if (embed.dim(1) != 3 * c)
            throw new TensorException(OP + ": embed " + embed.describe() + " must be [L, 3C] = [L, " + (3 * c)
                    + "] (gamma | alpha | beta) for x " + x.describe());
        int classes = embed.dim(0);
        OpChecks.labels(OP, labels, n, classes);
        int[] y = labels.clone();
        int p = h * w;

        Tensor out = Tensor.emptyLike(x);
        if (!x.isCpu()) {
            Gpu.Saved saved = Gpu.forward(out, x, embed, y, n, c, p);
            Autograd.record(OP, out, new Tensor[] {x, embed}, g -> {
                Tensor gx = x.requiresGrad() ? Tensor.emptyLike(x) : null;
                Tensor ge = embed.requiresGrad() ? Tensor.emptyLike(embed) : null;   // every element written
                Gpu.backward(gx, ge, g, x, embed, saved, n, c, p);
                return new Tensor[] {gx, ge};
            });
        } else if (x.dtype() == DType.F64) {
            Reference.forward(out.f64(), x.f64(), embed.f64(), y, n, c, p);
            Autograd.record(OP, out, new Tensor[] {x, embed}, g -> {
                Tensor gx = x.requiresGrad() ? Tensor.emptyLike(x) : null;
                Tensor ge = embed.requiresGrad() ? Tensor.zerosLike(embed) : null;
                Reference.backward(gx == null ? null : gx.f64(), ge == null ? null : ge.f64(), g.f64(), x.f64(),
                        embed.f64(), y, n, c, p);
                return new Tensor[] {gx, ge};
            });
        } else {
            // Saved for backward (and used by the forward's write pass): per (n,c) mu, rstd, mhat;
            // per n rs. Tiny next to x; no xhat copy (see Cpu).
            Tensor stats = Tensor.empty(DType.F64, n, 3, c);
            Tensor rs = Tensor.empty(DType.F64, Math.max(1, n));
            Cpu.forward(out.f32(), x.f32(), embed.f32(), y, n, c, p, stats.f64(), rs.f64());
            Autograd.record(OP, out, new Tensor[] {x, embed}, g -> {
                Tensor gx = x.requiresGrad() ? Tensor.emptyLike(x) : null;
                Tensor ge = embed.requiresGrad() ? Tensor.zerosLike(embed) : null;
                Tensor partial = Tensor.empty(DType.F64, Math.max(1, n), 3, c);   // per-image dgamma|dalpha|dbeta
                Cpu.backward(gx == null ? null : gx.f32(), partial.f64(), g.f32(), x.f32(), embed.f32(), y, n, c, p,
                        stats.f64(), rs.f64());
                if (ge != null) scatterRows(ge.f32(), partial.f64(), y, n, 3 * c);
                return new Tensor[] {gx, ge};
            });
        }
        return out;
    }

    /**
     * ge [L,3C] = sum over images n of partial[n, :] into row y_n, accumulated in double in image
     * order (serial: images may share a row); rows no image uses are written as 0.
     */
    private static void scatterRows(float[] ge, double[] partial, int[] y, int n, int width) {
        double[] acc = new double[ge.length];
        for (int i = 0; i < n; i++) {
            int row = y[i] * width, src = i * width;
            for (int k = 0; k < width; k++) acc[row + k] += partial[src + k];
        }
        for (int k = 0; k < ge.length; k++) ge[k] = (float) acc[k];
    }

    /**
     * float64 reference: the formulas of the class comment, each quantity in its own loop. The
     * backward recomputes the statistics and applies the chain rule one intermediate at a time
     * (xhat <- x, mu, var; mhat <- mu, m, v), independently of the fast kernel's closed form.
     */
    static final class Reference {
        /** Per-image statistics: mu[c], var[c] over the plane; m, v across channels. */
        private static final class Stats {
            final double[] mu, var;
            double m, v;

            Stats(double[] x, int n, int c, int p) {
                mu = new double[c];
                var = new double[c];
                for (int ch = 0; ch < c; ch++) {
                    int off = (n * c + ch) * p;
                    double s = 0;
                    for (int i = 0; i < p; i++) s += x[off + i];
                    mu[ch] = s / p;
                }
                for (int ch = 0; ch < c; ch++) {
                    int off = (n * c + ch) * p;
                    double s = 0;
                    for (int i = 0; i < p; i++) s += (x[off + i] - mu[ch]) * (x[off + i] - mu[ch]);
                    var[ch] = s / p;
                }
                double s = 0;
                for (int ch = 0; ch < c; ch++) s += mu[ch];
                m = s / c;
                s = 0;
                for (int ch = 0; ch < c; ch++) s += (mu[ch] - m) * (mu[ch] - m);
                v = s / (c - 1);
            }
        }

        static void forward(double[] out, double[] x, double[] e, int[] y, int nImg, int c, int p) {
            for (int n = 0; n < nImg; n++) {
                Stats st = new Stats(x, n, c, p);
                int row = y[n] * 3 * c;
                for (int ch = 0; ch < c; ch++) {
                    double gamma = e[row + ch], alpha = e[row + c + ch], beta = e[row + 2 * c + ch];
                    double mhat = (st.mu[ch] - st.m) / Math.sqrt(st.v + EPS);
                    int off = (n * c + ch) * p;
                    for (int i = 0; i < p; i++) {
                        double xhat = (x[off + i] - st.mu[ch]) / Math.sqrt(st.var[ch] + EPS);
                        out[off + i] = gamma * (xhat + alpha * mhat) + beta;
                    }
                }
            }
        }

        /** gx [N,C,P] written (when non-null); ge [L,3C] accumulated (+=, when non-null). */
        static void backward(double[] gx, double[] ge, double[] gout, double[] x, double[] e, int[] y,
                             int nImg, int c, int p) {
            for (int n = 0; n < nImg; n++) {
                Stats st = new Stats(x, n, c, p);
                int row = y[n] * 3 * c;
                double sv = Math.sqrt(st.v + EPS);
                double[] mhat = new double[c];
                for (int ch = 0; ch < c; ch++) mhat[ch] = (st.mu[ch] - st.m) / sv;

                // Parameter gradients and the gradient reaching mhat.
                double[] dmhat = new double[c];
                for (int ch = 0; ch < c; ch++) {
                    double gamma = e[row + ch], alpha = e[row + c + ch];
                    double sd = Math.sqrt(st.var[ch] + EPS);
                    int off = (n * c + ch) * p;
                    double dgamma = 0, dalpha = 0, dbeta = 0;
                    for (int i = 0; i < p; i++) {
                        double xhat = (x[off + i] - st.mu[ch]) / sd;
                        dgamma += gout[off + i] * (xhat + alpha * mhat[ch]);
                        dalpha += gout[off + i] * gamma * mhat[ch];
                        dbeta += gout[off + i];
                        dmhat[ch] += gout[off + i] * gamma * alpha;
                    }
                    if (ge != null) {
                        ge[row + ch] += dgamma;
                        ge[row + c + ch] += dalpha;
                        ge[row + 2 * c + ch] += dbeta;
                    }
                }
                if (gx == null) continue;

                // mhat_c = (mu_c - m) * (v + eps)^(-1/2), v = sum_c (mu_c - m)^2 / (C-1), m = mean_c mu_c.
                double dv = 0;
                for (int ch = 0; ch < c; ch++) dv += dmhat[ch] * (st.mu[ch] - st.m) * -0.5 * Math.pow(st.v + EPS, -1.5);
                double dm = 0;
                for (int ch = 0; ch < c; ch++) dm += -dmhat[ch] / sv;
                double sumDev = 0;
                for (int ch = 0; ch < c; ch++) sumDev += -2 * (st.mu[ch] - st.m);
                dm += dv * sumDev / (c - 1);
                double[] dmu = new double[c];
                for (int ch = 0; ch < c; ch++)
                    dmu[ch] = dmhat[ch] / sv + dv * 2 * (st.mu[ch] - st.m) / (c - 1) + dm / c;

                // xhat = (x - mu) * (var + eps)^(-1/2), var = mean_p (x - mu)^2, mu = mean_p x.
                for (int ch = 0; ch < c; ch++) {
                    double gamma = e[row + ch];
                    double sd = Math.sqrt(st.var[ch] + EPS);
                    int off = (n * c + ch) * p;
                    double dvar = 0;
                    for (int i = 0; i < p; i++)
                        dvar += gout[off + i] * gamma * (x[off + i] - st.mu[ch]) * -0.5 * Math.pow(st.var[ch] + EPS, -1.5);
                    double dmuLocal = 0;
                    for (int i = 0; i < p; i++) dmuLocal += gout[off + i] * gamma * -1 / sd;
                    double sumDevX = 0;
                    for (int i = 0; i < p; i++) sumDevX += -2 * (x[off + i] - st.mu[ch]);
                    dmuLocal += dvar * sumDevX / p;
                    double dmuTotal = dmuLocal + dmu[ch];
                    for (int i = 0; i < p; i++)
                        gx[off + i] = gout[off + i] * gamma / sd + dvar * 2 * (x[off + i] - st.mu[ch]) / p + dmuTotal / p;
                }
            }
        }
    }

    /**
     * float32 kernel. Forward: per plane, mean and biased variance (two reduction passes over the
     * plane, the second from L1/L2; Vector API float lanes folded into double every 8 elements
     * per lane, or scalar double without the module), then the across-channel step per image,
     * then one pass writing out = scale*(x - mu) + shift. Images are processed whole (all C
     * planes, then the writes), so x is read from memory once and re-read from L2 (an image is
     * C*H*W*4 = 256-512 KB at NCSN sizes): the traffic is one read of x and one write of out.
     * Backward: per plane the sums S1 = sum dout, S2 = sum dout*(x-mu) (one pass), the
     * across-channel step, then one pass writing dx = A*(dout - S1/P) + B*(x-mu) + D. Saved
     * between the two: mu, rstd, mhat per (n,c) and rs per n. No xhat copy: backward reads x
     * instead (the same bytes a saved xhat would cost, plus one subtract per element), and the
     * forward avoids writing a third full-size stream.
     * Parallel over images when there are at least as many images as threads, otherwise over
     * planes in three phases (statistics, across-channel, write).
     *
     * <p>Public only so that benchmarks (ncsn.bench) can time the kernels without the autograd
     * bookkeeping around them (leaf-gradient accumulation would add a pass over x); the op's API
     * is {@link CondInstanceNormPlus#apply}.
     */
    public static final class Cpu {
        /** Elements per parallel chunk below which a problem runs on one thread. */
        private static final int GRAIN = 1 << 15;

        /**
         * out, x [N,C,P]; e [L,3C]; st [N,3,C] written (mu, rstd, mhat); rs [N] written.
         * Memory traffic: x read once and out written once (each image's planes are re-read from cache).
         */
        public static void forward(float[] out, float[] x, float[] e, int[] y, int nImg, int c, int p, double[] st, double[] rs) {
            int planeGrain = Math.max(1, GRAIN / p);
            if (nImg >= Parallel.threads()) {
                Parallel.forRange(nImg, Math.max(1, planeGrain / c), (lo, hi) -> {
                    for (int n = lo; n < hi; n++) {
                        for (int ch = 0; ch < c; ch++) planeStats(x, n, ch, c, p, st);
                        across(st, rs, n, c);
                        for (int ch = 0; ch < c; ch++) writePlane(out, x, e, y, n, ch, c, p, st, rs);
                    }
                });
            } else {
                Parallel.forRange(nImg * c, planeGrain, (lo, hi) -> {
                    for (int q = lo; q < hi; q++) planeStats(x, q / c, q % c, c, p, st);
                });
                for (int n = 0; n < nImg; n++) across(st, rs, n, c);
                Parallel.forRange(nImg * c, planeGrain, (lo, hi) -> {
                    for (int q = lo; q < hi; q++) writePlane(out, x, e, y, q / c, q % c, c, p, st, rs);
                });
            }
        }

        /**
         * st[n,0,ch] = mu, st[n,1,ch] = rstd of plane (n,ch). Two passes (the mean, then squared
         * deviations from the float-rounded mean muf), the second from L1/L2; sums end in double.
         * The mean is summed as deviations from the plane's first element k: with float lanes, a
         * plain sum of values near 20 would lose ~1e-7 relative on mu, and mu - m (the
         * across-channel path) can be 1000x smaller than mu. sum (x - mu)^2 = sum (x - muf)^2
         * - P (mu - muf)^2 exactly, hence the correction.
         */
        static void planeStats(float[] x, int n, int ch, int c, int p, double[] st) {
            int off = (n * c + ch) * p;
            float k = x[off];
            double mu = k + (VECTOR ? Vec.sumDev(x, off, p, k) : sumDev(x, off, p, k)) / p;
            float muf = (float) mu;
            double dev = VECTOR ? Vec.sumSqDev(x, off, p, muf) : sumSqDev(x, off, p, muf);
            double var = Math.max(0.0, dev / p - (mu - muf) * (mu - muf));
            int b = n * 3 * c + ch;
            st[b] = mu;
            st[b + c] = 1.0 / Math.sqrt(var + EPS);
        }

        /** Scalar fallback: sum of (x - k) over x[off, off+p) in double, four chains. */
        static double sumDev(float[] x, int off, int p, float k) {
            int end = off + p, i = off;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (; i + 3 < end; i += 4) {
                s0 += x[i] - k;
                s1 += x[i + 1] - k;
                s2 += x[i + 2] - k;
                s3 += x[i + 3] - k;
            }
            for (; i < end; i++) s0 += x[i] - k;
            return (s0 + s1) + (s2 + s3);
        }

        /** Scalar fallback: sum of (x - m)^2 over x[off, off+p) in double, four chains. */
        static double sumSqDev(float[] x, int off, int p, float m) {
            int end = off + p, i = off;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (; i + 3 < end; i += 4) {
                double d0 = x[i] - m, d1 = x[i + 1] - m, d2 = x[i + 2] - m, d3 = x[i + 3] - m;
                s0 += d0 * d0;
                s1 += d1 * d1;
                s2 += d2 * d2;
                s3 += d3 * d3;
            }
            for (; i < end; i++) {
                double d = x[i] - m;
                s0 += d * d;
            }
            return (s0 + s1) + (s2 + s3);
        }

        /** Scalar fallback: out[i1] = sum g, out[i2] = sum g*(x - m) over [off, off+p), in double. */
        static void sumsGx(float[] g, float[] x, int off, int p, float m, double[] out, int i1, int i2) {
            int end = off + p, i = off;
            double a0 = 0, a1 = 0, q0 = 0, q1 = 0;
            for (; i + 1 < end; i += 2) {
                double g0 = g[i], g1 = g[i + 1];
                a0 += g0;
                a1 += g1;
                q0 += g0 * (x[i] - m);
                q1 += g1 * (x[i + 1] - m);
            }
            for (; i < end; i++) {
                double g0 = g[i];
                a0 += g0;
                q0 += g0 * (x[i] - m);
            }
            out[i1] = a0 + a1;
            out[i2] = q0 + q1;
        }

        /** Across-channel step of image n: m, v of the channel means; st[n,2,:] = mhat, rs[n]. */
        static void across(double[] st, double[] rs, int n, int c) {
            int b = n * 3 * c;
            double m = 0;
            for (int ch = 0; ch < c; ch++) m += st[b + ch];
            m /= c;
            double v = 0;
            for (int ch = 0; ch < c; ch++) v += (st[b + ch] - m) * (st[b + ch] - m);
            v /= c - 1;
            double r = 1.0 / Math.sqrt(v + EPS);
            rs[n] = r;
            for (int ch = 0; ch < c; ch++) st[b + 2 * c + ch] = (st[b + ch] - m) * r;
        }

        /**
         * out = scale*(x - muf) + shift on plane (n,ch), with scale = gamma*rstd and shift =
         * gamma*alpha*mhat + beta + scale*(muf - mu): subtracting the float-rounded mean first keeps
         * precision when |mu| is large next to the spread (no cancellation of scale*x against scale*mu).
         */
        static void writePlane(float[] out, float[] x, float[] e, int[] y, int n, int ch, int c, int p,
                               double[] st, double[] rs) {
            int b = n * 3 * c + ch, row = y[n] * 3 * c;
            double gamma = e[row + ch], alpha = e[row + c + ch], beta = e[row + 2 * c + ch];
            double mu = st[b], rstd = st[b + c], mhat = st[b + 2 * c];
            float muf = (float) mu;
            double scaleD = gamma * rstd;
            float scale = (float) scaleD;
            float shift = (float) (gamma * alpha * mhat + beta + scaleD * (muf - mu));
            int off = (n * c + ch) * p, end = off + p;
            for (int i = off; i < end; i++) out[i] = (x[i] - muf) * scale + shift;
        }

        /**
         * gx [N,C,P] written when non-null; partial [N,3,C] written with each image's dgamma,
         * dalpha, dbeta (the caller scatters them into rows by label). st, rs as the forward left them.
         * Memory traffic: x and dout read once, dx written once (re-reads per image from cache).
         */
        public static void backward(float[] gx, double[] partial, float[] gout, float[] x, float[] e, int[] y,
                             int nImg, int c, int p, double[] st, double[] rs) {
            int planeGrain = Math.max(1, GRAIN / p);
            // sums[n,0,ch] = S1 = sum_p dout, sums[n,1,ch] = S2 = sum_p dout*(x - mu); then dmu in [n,2,ch].
            double[] sums = partial;   // reused: S1, S2 and dmu live here until the parameter gradients overwrite them
            if (nImg >= Parallel.threads()) {
                Parallel.forRange(nImg, Math.max(1, planeGrain / c), (lo, hi) -> {
                    for (int n = lo; n < hi; n++) {
                        for (int ch = 0; ch < c; ch++) planeSums(gout, x, n, ch, c, p, st, sums);
                        acrossBackward(sums, st, rs, e, y, n, c);
                        if (gx != null) for (int ch = 0; ch < c; ch++) writeGradPlane(gx, gout, x, e, y, n, ch, c, p, st, sums);
                        paramGrads(sums, st, e, y, n, c);
                    }
                });
            } else {
                Parallel.forRange(nImg * c, planeGrain, (lo, hi) -> {
                    for (int q = lo; q < hi; q++) planeSums(gout, x, q / c, q % c, c, p, st, sums);
                });
                for (int n = 0; n < nImg; n++) acrossBackward(sums, st, rs, e, y, n, c);
                if (gx != null) Parallel.forRange(nImg * c, planeGrain, (lo, hi) -> {
                    for (int q = lo; q < hi; q++) writeGradPlane(gx, gout, x, e, y, q / c, q % c, c, p, st, sums);
                });
                for (int n = 0; n < nImg; n++) paramGrads(sums, st, e, y, n, c);
            }
        }

        /**
         * sums[n,0,ch] = S1 = sum_p dout, sums[n,1,ch] = S2 = sum_p dout*(x - mu) over plane (n,ch);
         * S2 is accumulated against the float-rounded muf and corrected: S2 = sum dout*(x-muf) + (muf-mu)*S1.
         */
        static void planeSums(float[] gout, float[] x, int n, int ch, int c, int p, double[] st, double[] sums) {
            int b = n * 3 * c + ch;
            double mu = st[b];
            float muf = (float) mu;
            int off = (n * c + ch) * p;
            if (VECTOR) Vec.sumsGx(gout, x, off, p, muf, sums, b, b + c);
            else sumsGx(gout, x, off, p, muf, sums, b, b + c);
            sums[b + c] += (muf - mu) * sums[b];
        }

        /** Image n: sums[n,2,:] = dmu_c = rs*(dmhat_c - mean_c dmhat - mhat_c*sum_c(dmhat*mhat)/(C-1)). */
        static void acrossBackward(double[] sums, double[] st, double[] rs, float[] e, int[] y, int n, int c) {
            int b = n * 3 * c, row = y[n] * 3 * c;
            double mean = 0, dot = 0;
            for (int ch = 0; ch < c; ch++) {
                double dmhat = (double) e[row + ch] * e[row + c + ch] * sums[b + ch];
                mean += dmhat;
                dot += dmhat * st[b + 2 * c + ch];
            }
            mean /= c;
            dot /= c - 1;
            double r = rs[n];
            for (int ch = 0; ch < c; ch++) {
                double dmhat = (double) e[row + ch] * e[row + c + ch] * sums[b + ch];
                sums[b + 2 * c + ch] = r * (dmhat - mean - st[b + 2 * c + ch] * dot);
            }
        }

        /**
         * dx = rstd*gamma*(dout - S1/P - (x-mu)*rstd^2*S2/P) + dmu/P on plane (n,ch), written as
         * A*(dout - S1/P) + B*(x - muf) + D with muf the float-rounded mean (D absorbs B*(muf - mu)).
         * Both mean subtractions happen before scaling by A = gamma*rstd: rstd reaches 1/sqrt(eps)
         * = 316 on flat planes, and A*dout - A*S1/P would cancel at that magnitude (for P = 1 the
         * instance-norm term is exactly 0, and this form gives exactly 0).
         */
        static void writeGradPlane(float[] gx, float[] gout, float[] x, float[] e, int[] y, int n, int ch, int c, int p,
                                   double[] st, double[] sums) {
            int b = n * 3 * c + ch, row = y[n] * 3 * c;
            double gamma = e[row + ch];
            double mu = st[b], rstd = st[b + c];
            double s1 = sums[b], s2 = sums[b + c], dmu = sums[b + 2 * c];
            float muf = (float) mu, meanG = (float) (s1 / p);
            double aD = gamma * rstd;
            double bD = -aD * rstd * rstd * s2 / p;
            float a = (float) aD, bb = (float) bD;
            float d = (float) (dmu / p + bD * (muf - mu) - aD * (s1 / p - meanG));
            int off = (n * c + ch) * p, end = off + p;
            for (int i = off; i < end; i++) gx[i] = a * (gout[i] - meanG) + bb * (x[i] - muf) + d;
        }

        /** Image n: overwrite sums[n,:,:] with dgamma | dalpha | dbeta (S1, S2 no longer needed). */
        static void paramGrads(double[] sums, double[] st, float[] e, int[] y, int n, int c) {
            int b = n * 3 * c, row = y[n] * 3 * c;
            for (int ch = 0; ch < c; ch++) {
                double gamma = e[row + ch], alpha = e[row + c + ch];
                double s1 = sums[b + ch], s2 = sums[b + c + ch];
                double rstd = st[b + c + ch], mhat = st[b + 2 * c + ch];
                sums[b + ch] = s2 * rstd + alpha * mhat * s1;   // dgamma
                sums[b + c + ch] = gamma * mhat * s1;           // dalpha
                sums[b + 2 * c + ch] = s1;                      // dbeta
            }
        }
    }

    /**
     * Whether the reductions use the Vector API: the incubator module must be present (java
     * --add-modules jdk.incubator.vector) and -Dncsn.simd=scalar must not be set. Read once.
     */
    static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !"scalar".equals(System.getProperty("ncsn.simd"));

    /** Which reduction kernel the float32 path uses, and why (for benchmark and check output). */
    public static String kernelName() {
        if (VECTOR) return "vector (" + Vec.lanes() + " float lanes)";
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
                ? "scalar (-Dncsn.simd=scalar)" : "scalar (jdk.incubator.vector not loaded)";
    }

    /**
     * Vector API reductions for the float32 kernel (loaded only when {@link #VECTOR}; no code
     * outside this class touches jdk.incubator.vector types, so the op works without the module). Lanes
     * accumulate in float over blocks of at most 8 elements per lane and accumulator, then each
     * block folds into a double: the error stays at float rounding for any plane size.
     */
    static final class Vec {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
        private static final int V = S.length();
        /** Elements per block: two accumulators x 8 vectors each (64 per block was 5x less accurate on offset planes, no faster). */
        private static final int BLOCK = 16 * V;

        static int lanes() {
            return V;
        }

        /** sum of (x - k) over x[off, off+p). */
        static double sumDev(float[] x, int off, int p, float k) {
            int end = off + p, vend = off + S.loopBound(p), i = off;
            var kv = FloatVector.broadcast(S, k);
            double total = 0;
            while (i < vend) {
                int bend = Math.min(vend, i + BLOCK);
                var a0 = FloatVector.zero(S);
                var a1 = FloatVector.zero(S);
                for (; i + 2 * V <= bend; i += 2 * V) {
                    a0 = a0.add(FloatVector.fromArray(S, x, i).sub(kv));
                    a1 = a1.add(FloatVector.fromArray(S, x, i + V).sub(kv));
                }
                for (; i < bend; i += V) a0 = a0.add(FloatVector.fromArray(S, x, i).sub(kv));
                total += a0.add(a1).reduceLanes(VectorOperators.ADD);
            }
            for (; i < end; i++) total += x[i] - k;
            return total;
        }

        /** sum of (x - m)^2 over x[off, off+p). */
        static double sumSqDev(float[] x, int off, int p, float m) {
            int end = off + p, vend = off + S.loopBound(p), i = off;
            var mv = FloatVector.broadcast(S, m);
            double total = 0;
            while (i < vend) {
                int bend = Math.min(vend, i + BLOCK);
                var a0 = FloatVector.zero(S);
                var a1 = FloatVector.zero(S);
                for (; i + 2 * V <= bend; i += 2 * V) {
                    var d0 = FloatVector.fromArray(S, x, i).sub(mv);
                    var d1 = FloatVector.fromArray(S, x, i + V).sub(mv);
                    a0 = d0.fma(d0, a0);
                    a1 = d1.fma(d1, a1);
                }
                for (; i < bend; i += V) {
                    var d0 = FloatVector.fromArray(S, x, i).sub(mv);
                    a0 = d0.fma(d0, a0);
                }
                total += a0.add(a1).reduceLanes(VectorOperators.ADD);
            }
            for (; i < end; i++) {
                double d = x[i] - m;
                total += d * d;
            }
            return total;
        }

        /** out[i1] = sum g, out[i2] = sum g*(x - m) over [off, off+p). */
        static void sumsGx(float[] g, float[] x, int off, int p, float m, double[] out, int i1, int i2) {
            int end = off + p, vend = off + S.loopBound(p), i = off;
            var mv = FloatVector.broadcast(S, m);
            double t1 = 0, t2 = 0;
            while (i < vend) {
                int bend = Math.min(vend, i + BLOCK);
                var a0 = FloatVector.zero(S);
                var a1 = FloatVector.zero(S);
                var q0 = FloatVector.zero(S);
                var q1 = FloatVector.zero(S);
                for (; i + 2 * V <= bend; i += 2 * V) {
                    var g0 = FloatVector.fromArray(S, g, i);
                    var g1 = FloatVector.fromArray(S, g, i + V);
                    a0 = a0.add(g0);
                    a1 = a1.add(g1);
                    q0 = FloatVector.fromArray(S, x, i).sub(mv).fma(g0, q0);
                    q1 = FloatVector.fromArray(S, x, i + V).sub(mv).fma(g1, q1);
                }
                for (; i < bend; i += V) {
                    var g0 = FloatVector.fromArray(S, g, i);
                    a0 = a0.add(g0);
                    q0 = FloatVector.fromArray(S, x, i).sub(mv).fma(g0, q0);
                }
                t1 += a0.add(a1).reduceLanes(VectorOperators.ADD);
                t2 += q0.add(q1).reduceLanes(VectorOperators.ADD);
            }
            for (; i < end; i++) {
                double g0 = g[i];
                t1 += g0;
                t2 += g0 * (x[i] - m);
            }
            out[i1] = t1;
            out[i2] = t2;
        }
    }

    /**
     * CUDA launchers for src/main/cuda/cin_plus.cu (its header has the buffer layouts). Forward:
     * per-plane statistics, per-image across-channel step, per-plane write. Backward: per-plane
     * sums, per-image across-channel step (dx coefficients and each image's parameter
     * gradients), per-plane dx, then the embedding gradient summed per label row in image order
     * (deterministic, no atomics). Double buffers live in float32 tensors of twice the length
     * (CUDA tensors are float32; fresh allocations are 256-byte aligned, so the kernels may read
     * them as double). The labels go up as a float32 tensor (exact below 2^24), reused across
     * calls with the same labels (see labelsOn).
     */
    static final class Gpu {
        /** Threads per block of the plane and per-image kernels (a multiple of 32). */
        private static final int BLOCK = 256;

        /** Saved for backward: labels [N] float32, st [N,3,C] double, rs [N] double (all on the device). */
        record Saved(Tensor labels, Tensor st, Tensor rs) {}

        /** The last labels this thread uploaded, and their device copy. */
        private record Uploaded(int[] labels, Tensor onDevice) {}

        private static final ThreadLocal<Uploaded> LAST = new ThreadLocal<>();

        /**
         * labels [N] as a float32 tensor on x's device. Each upload costs an allocation, a staging
         * copy and a driver call, and a model applies CIN++ dozens of times per forward with the
         * same labels, so the last upload is reused while it is still live: it was allocated
         * like any temporary (owned by the scope open at the time, if any) and a closed scope
         * makes it not live, so a reused copy never outlives what a fresh one would have.
         */
        private static Tensor labelsOn(Tensor x, int[] y) {
            Uploaded last = LAST.get();
            if (last != null && last.onDevice().isLive() && last.onDevice().device() == x.device()
                    && java.util.Arrays.equals(last.labels(), y))
                return last.onDevice();
            float[] yf = new float[Math.max(1, y.length)];
            for (int i = 0; i < y.length; i++) yf[i] = y[i];
            Tensor t = Tensor.wrap(yf, yf.length).to(x.device());
            LAST.set(new Uploaded(y.clone(), t));
            return t;
        }

        /** labels as a persistent device tensor, registered as this thread's last upload (see preloadLabels). */
        static Tensor preload(int[] y, ncsn.tensor.Device device) {
            float[] yf = new float[Math.max(1, y.length)];
            for (int i = 0; i < y.length; i++) yf[i] = y[i];
            Tensor t = Tensor.persistent(device, DType.F32, yf.length);
            t.copyFrom(Tensor.wrap(yf, yf.length));
            LAST.set(new Uploaded(y, t));
            return t;
        }

        /** A device buffer for {@code count} doubles. */
        private static Tensor doubles(Tensor like, int count) {
            return Tensor.empty(like.device(), DType.F32, 2 * Math.max(1, count));
        }

        static Saved forward(Tensor out, Tensor x, Tensor embed, int[] y, int n, int c, int p) {
            Tensor labels = labelsOn(x, y);
            Tensor st = doubles(x, n * 3 * c), rs = doubles(x, n);
            Tensor coef = Tensor.empty(x.device(), DType.F32, Math.max(1, n * c * 3));
            int planes = n * c;
            Launch.kernel("cin_pp_stats_f32").ptr(x).ptr(st).i(c).l(p).grid(planes).block(BLOCK).run();
            Launch.kernel("cin_pp_across_f32").ptr(st).ptr(rs).ptr(coef).ptr(embed).ptr(labels).i(c)
                    .grid(n).block(BLOCK).run();
            Launch.kernel("cin_pp_write_f32").ptr(x).ptr(coef).ptr(out).l(p).grid(planes).block(BLOCK).run();
            coef.free();
            return new Saved(labels, st, rs);
        }

        /** gx [N,C,P] written when non-null; ge [L,3C] written (not accumulated) when non-null. */
        static void backward(Tensor gx, Tensor ge, Tensor g, Tensor x, Tensor embed, Saved s, int n, int c, int p) {
            int planes = n * c;
            Tensor sums = doubles(x, n * 3 * c), partial = doubles(x, n * 3 * c);
            Tensor gcoef = Tensor.empty(x.device(), DType.F32, Math.max(1, planes * 5));
            Launch.kernel("cin_pp_bwd_sums_f32").ptr(g).ptr(x).ptr(s.st()).ptr(sums).i(c).l(p)
                    .grid(planes).block(BLOCK).run();
            Launch.kernel("cin_pp_bwd_across_f32").ptr(sums).ptr(s.st()).ptr(s.rs()).ptr(embed).ptr(s.labels())
                    .ptr(gcoef).ptr(partial).i(c).l(p).grid(n).block(BLOCK).run();
            if (gx != null)
                Launch.kernel("cin_pp_bwd_dx_f32").ptr(g).ptr(x).ptr(gcoef).ptr(gx).l(p).grid(planes).block(BLOCK).run();
            if (ge != null) {
                long total = ge.numel();
                Launch.kernel("cin_pp_bwd_embed_f32").ptr(partial).ptr(s.labels()).ptr(ge).i(n).i(3 * c).l(total)
                        .elements(total).run();
            }
            sums.free();
            partial.free();
            gcoef.free();
        }
    }

    // ---- catalog cases ------------------------------------------------------------------------

    /**
     * x ~ N(0,1) (optionally with shifted channel means), embed rows: gamma = 1 + 0.5 n, alpha = 1 + 0.5 n,
     * beta = n (n ~ N(0,1)), so that both normalisation paths carry weight.
     */
    private static OpCatalog.Case cinCase(int n, int c, int h, int w, int classes, int[] labels, double offset) {
        String variant = String.format("x[%d,%d,%d,%d] embed[%d,%d] labels%s%s", n, c, h, w, classes, 3 * c,
                java.util.Arrays.toString(labels), offset != 0 ? " offset " + offset : "");
        return OpCatalog.Case.of(OP, variant, seed -> {
            Tensor x = OpCatalog.normal(seed, n, c, h, w).name("x");
            if (offset != 0) {
                double[] d = x.f64();
                // Channel means spread by offset (across-channel path) around 4*offset (cancellation in x - mu).
                for (int i = 0; i < d.length; i++) d[i] += offset * ((i / (h * w)) % c - c / 2.0) + 4 * offset;
            }
            Tensor e = OpCatalog.normal(seed + 1, classes, 3 * c).name("embed");
            double[] d = e.f64();
            for (int r = 0; r < classes; r++)
                for (int k = 0; k < 2 * c; k++) d[r * 3 * c + k] = 1 + 0.5 * d[r * 3 * c + k];
            return new Tensor[] {x, e};
        }, in -> apply(in[0], in[1], labels));
    }

    static List<OpCatalog.Case> cases() {
        return List.of(
                cinCase(3, 5, 3, 5, 4, new int[] {2, 0, 2}, 0),
                cinCase(1, 2, 7, 7, 4, new int[] {3}, 0),
                cinCase(3, 3, 1, 1, 4, new int[] {1, 1, 1}, 0),
                cinCase(2, 7, 3, 5, 4, new int[] {0, 0}, 0),
                cinCase(3, 3, 4, 3, 4, new int[] {3, 1, 3}, 2.5),
                // Many images sharing one label row (the embedding gradient sums them), odd plane, unused rows.
                cinCase(6, 5, 3, 5, 3, new int[] {2, 2, 0, 2, 2, 2}, 0));
    }
}
