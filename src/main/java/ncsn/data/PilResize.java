package ncsn.data;

/**
 * Bilinear resizing of 8-bit images, computed the way Pillow's {@code Image.resize(size,
 * BILINEAR)} computes it (libImaging/Resample.c), which is what torchvision's
 * {@code transforms.Resize} runs on a PIL image. The result matches Pillow 9.4 byte for byte
 * (checked against it on random images, down- and upsampling, see PilResizeTest).
 *
 * <p>The method, written out (this is a re-derivation, not a copy of Pillow's code):
 * <ul>
 *   <li>Separable: a horizontal pass when the width changes, then a vertical pass when the height
 *       changes; the intermediate image is rounded to 8 bits, as Pillow stores it.</li>
 *   <li>For an axis of in pixels mapped to out pixels: scale = in / out, filterscale = max(scale, 1)
 *       (downscaling widens the triangle filter: antialiasing, i.e. close to area averaging),
 *       support = filterscale. Output pixel i has centre c = (i + 0.5) * scale and reads input
 *       pixels [xmin, xmax) with xmin = max(0, (int) (c - support + 0.5)), xmax = min(in,
 *       (int) (c + support + 0.5)); input j gets weight tri((j - c + 0.5) / filterscale) with
 *       tri(t) = max(0, 1 - |t|), the weights normalised to sum 1.</li>
 *   <li>Weights become fixed point with 22 fraction bits (round half away from zero); an output
 *       is (2^21 + sum pixel * weight) >> 22, clamped to [0, 255].</li>
 * </ul>
 * Equal input and output sizes return a copy (Pillow does the same).
 */
final class PilResize {
    private static final int PRECISION_BITS = 32 - 8 - 2;

    private PilResize() {}

    /** Per-output-pixel taps of one axis: the first input index, the tap count, fixed-point weights. */
    record Taps(int[] first, int[] count, int[] weights, int ksize) {}

    static Taps taps(int in, int out) {
        double scale = (double) in / out;
        double filterscale = Math.max(scale, 1.0);
        double support = 1.0 * filterscale; // the bilinear (triangle) filter has support 1
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] first = new int[out], count = new int[out], weights = new int[out * ksize];
        double[] w = new double[ksize];
        for (int i = 0; i < out; i++) {
            double centre = (i + 0.5) * scale;
            int xmin = Math.max(0, (int) (centre - support + 0.5));
            int xmax = Math.min(in, (int) (centre + support + 0.5)) - xmin;
            double sum = 0;
            for (int x = 0; x < xmax; x++) {
                double t = Math.abs((x + xmin - centre + 0.5) / filterscale);
                w[x] = t < 1.0 ? 1.0 - t : 0.0;
                sum += w[x];
            }
            for (int x = 0; x < xmax; x++) {
                double v = (sum != 0.0 ? w[x] / sum : w[x]) * (1 << PRECISION_BITS);
                weights[i * ksize + x] = (int) (v < 0 ? v - 0.5 : v + 0.5);
            }
            first[i] = xmin;
            count[i] = Math.max(0, xmax);
        }
        return new Taps(first, count, weights, ksize);
    }

    private static int clip8(long acc) {
        long v = acc >> PRECISION_BITS;
        return (int) (v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /**
     * Resizes planar 8-bit images: src is [c, h, w] (CHW, unsigned bytes), the result [c, oh, ow].
     */
    static byte[] resize(byte[] src, int c, int h, int w, int oh, int ow) {
        return new Plan(h, w, oh, ow).apply(src, c);
    }

    /** The taps of one h x w -> oh x ow resize, computed once and reused for many images. */
    static final class Plan {
        final int h, w, oh, ow;
        private final Taps horizontal, vertical; // null when that axis keeps its size

        Plan(int h, int w, int oh, int ow) {
            if (h <= 0 || w <= 0 || oh <= 0 || ow <= 0)
                throw new IllegalArgumentException("resize " + w + "x" + h + " to " + ow + "x" + oh);
            this.h = h;
            this.w = w;
            this.oh = oh;
            this.ow = ow;
            this.horizontal = ow != w ? taps(w, ow) : null;
            this.vertical = oh != h ? taps(h, oh) : null;
        }

        /** src [c, h, w] -> [c, oh, ow]; a copy when the size is unchanged. */
        byte[] apply(byte[] src, int c) {
            if (src.length != c * h * w)
                throw new IllegalArgumentException("resize: " + src.length + " bytes, expected " + c + "x" + h + "x" + w);
            byte[] cur = src;
            if (horizontal != null) {
                // Horizontal pass over every row: [c, h, w] -> [c, h, ow]. (Pillow only computes the
                // rows the vertical pass reads; the values of those rows are the same.)
                Taps t = horizontal;
                byte[] tmp = new byte[c * h * ow];
                for (int row = 0; row < c * h; row++) {
                    int ib = row * w, ob = row * ow;
                    for (int x = 0; x < ow; x++) {
                        long acc = 1L << (PRECISION_BITS - 1);
                        int k = x * t.ksize, f = t.first[x];
                        for (int j = 0, n = t.count[x]; j < n; j++)
                            acc += (long) (cur[ib + f + j] & 0xFF) * t.weights[k + j];
                        tmp[ob + x] = (byte) clip8(acc);
                    }
                }
                cur = tmp;
            }
            if (vertical != null) {
                // Vertical pass: [c, h, ow] -> [c, oh, ow].
                Taps t = vertical;
                byte[] tmp = new byte[c * oh * ow];
                for (int ch = 0; ch < c; ch++) {
                    int ib = ch * h * ow, ob = ch * oh * ow;
                    for (int y = 0; y < oh; y++) {
                        int k = y * t.ksize, f = t.first[y], n = t.count[y];
                        for (int x = 0; x < ow; x++) {
                            long acc = 1L << (PRECISION_BITS - 1);
                            for (int j = 0; j < n; j++)
                                acc += (long) (cur[ib + (f + j) * ow + x] & 0xFF) * t.weights[k + j];
                            tmp[ob + y * ow + x] = (byte) clip8(acc);
                        }
                    }
                }
                cur = tmp;
            }
            return cur == src ? src.clone() : cur;
        }
    }
}
