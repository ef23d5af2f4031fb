package ncsn.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

import org.junit.jupiter.api.Test;

/**
 * PilResize against values produced by Pillow 9.4 ({@code Image.resize(size, Image.BILINEAR)}, the
 * resampling torchvision's Resize runs on PIL images) and the torchvision crop/resize geometry.
 * The expected arrays were printed by /usr/bin/python3 with PIL for the patterns built here.
 */
class PilResizeTest {
    /** 1 x 10 x 13 pattern p(y, x) = (37x + 11y + 5xy) mod 256. */
    private static byte[] pattern() {
        byte[] a = new byte[10 * 13];
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 13; x++) a[y * 13 + x] = (byte) ((x * 37 + y * 11 + x * y * 5) % 256);
        return a;
    }

    private static int[] unsigned(byte[] b, int n) {
        int[] o = new int[n];
        for (int i = 0; i < n; i++) o[i] = b[i] & 0xFF;
        return o;
    }

    @Test
    void downscaleMatchesPillow() {
        // Pillow: Image.fromarray(a, 'L').resize((6, 4), Image.BILINEAR)
        int[] pil = {44, 125, 142, 75, 135, 126, 78, 160, 98, 144, 145, 124, 115, 128, 130, 132, 132, 124, 134, 117,
            162, 134, 117, 153};
        assertArrayEquals(pil, unsigned(PilResize.resize(pattern(), 1, 10, 13, 4, 6), 24));
    }

    @Test
    void upscaleMatchesPillow() {
        // Pillow: .resize((17, 20), Image.BILINEAR), first 40 values (rows 0, 1 and 6 values of row 2)
        int[] pil = {0, 24, 52, 81, 109, 137, 165, 194, 222, 55, 23, 51, 79, 107, 136, 164, 188, 3, 28, 57, 86, 116,
            145, 174, 188, 168, 51, 35, 64, 93, 122, 152, 158, 142, 8, 35, 66, 97, 129, 160};
        assertArrayEquals(pil, unsigned(PilResize.resize(pattern(), 1, 10, 13, 20, 17), 40));
    }

    @Test
    void channelsAreIndependentAndSameSizeIsACopy() {
        byte[] p = pattern();
        byte[] two = new byte[2 * p.length];
        System.arraycopy(p, 0, two, 0, p.length);
        for (int i = 0; i < p.length; i++) two[p.length + i] = (byte) (255 - (p[i] & 0xFF));
        byte[] r = PilResize.resize(two, 2, 10, 13, 4, 6);
        byte[] r0 = PilResize.resize(p, 1, 10, 13, 4, 6);
        for (int i = 0; i < 24; i++) {
            assertEquals(r0[i], r[i]);
            // a bilinear filter with weights summing to one commutes with 255 - v up to rounding
            assertEquals(255 - (r0[i] & 0xFF), r[24 + i] & 0xFF, 1.0);
        }
        byte[] same = PilResize.resize(p, 1, 10, 13, 10, 13);
        assertNotSame(p, same);
        assertArrayEquals(p, same);
    }

    @Test
    void constantImageStaysConstant() {
        byte[] c = new byte[3 * 140 * 140];
        java.util.Arrays.fill(c, (byte) 200);
        for (byte b : PilResize.resize(c, 3, 140, 140, 32, 32)) assertEquals(200, b & 0xFF);
        for (byte b : PilResize.resize(c, 3, 140, 140, 150, 150)) assertEquals(200, b & 0xFF);
    }

    @Test
    void torchvisionGeometry() {
        // CenterCrop offset = round((in - out) / 2) with Python's half-to-even rounding
        assertEquals(39, Images.cropOffset(218, 140));
        assertEquals(19, Images.cropOffset(178, 140));
        assertEquals(0, Images.cropOffset(33, 32)); // 0.5 -> 0
        assertEquals(2, Images.cropOffset(37, 32)); // 2.5 -> 2
        assertEquals(2, Images.cropOffset(35, 32)); // 1.5 -> 2
        assertEquals(0, Images.cropOffset(32, 32));
        // Resize(size): shorter side -> size, longer int(size * long / short); no-op when already size
        assertArrayEquals(new int[] {39, 32}, Images.resizeShorterDims(218, 178, 32));
        assertArrayEquals(new int[] {32, 39}, Images.resizeShorterDims(178, 218, 32));
        assertArrayEquals(new int[] {64, 64}, Images.resizeShorterDims(28, 28, 64));
        assertArrayEquals(new int[] {50, 32}, Images.resizeShorterDims(50, 32, 32));
    }
}
