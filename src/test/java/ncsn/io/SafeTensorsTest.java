package ncsn.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir
    Path dir;

    @Test
    void roundTripsTensorsIntegersAndMetadata() throws Exception {
        Path f = dir.resolve("a.safetensors");
        new SafeTensors.Writer()
                .put("w", Tensor.wrap(new float[] {1.5f, -2f, 3.25f, 0f, 7f, 1e-8f}, 2, 3))
                .put("d", Tensor.wrap(new double[] {Math.PI}, 1))
                .putLongs("labels", new long[] {3, 0, 9})
                .meta("format", "ncsn-checkpoint")
                .write(f);
        SafeTensors.Contents c = SafeTensors.read(f);
        assertEquals("ncsn-checkpoint", c.metadata().get("format"));
        assertArrayEquals(new float[] {1.5f, -2f, 3.25f, 0f, 7f, 1e-8f}, c.get("w").toTensor(DType.F32).f32());
        assertArrayEquals(new int[] {2, 3}, c.get("w").intShape());
        assertEquals(Math.PI, c.get("d").toTensor(DType.F64).get(0));
        assertArrayEquals(new int[] {3, 0, 9}, c.get("labels").toIntArray());
        assertEquals(0, (Files.size(f) - 8 - ByteBuffer.wrap(Files.readAllBytes(f)).order(ByteOrder.LITTLE_ENDIAN).getLong(0)) % 4,
                "data section length is whole elements");
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temp file is left behind");
        }
    }

    private Path raw(String header, int dataBytes) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = dir.resolve("bad.safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static String message(Path f) {
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensors.read(f));
        assertTrue(e.getMessage().startsWith(f.toString()), "names the file: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void corruptFilesAreReportedNamingTheFileAndTheProblem() throws Exception {
        assertTrue(message(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4)).contains("outside"));
        assertTrue(message(raw("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8)).contains("unknown dtype 'Q7'"));
        assertTrue(message(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8)).contains("needs 12"));
        assertTrue(message(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12)).contains("overlap"));
        assertTrue(message(raw("{\"a\": [1,2", 8)).contains("not valid JSON"));
        Path f = dir.resolve("len.safetensors");
        Files.write(f, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
        assertTrue(message(f).contains("truncated"));
        Files.write(f, new byte[3]);
        assertTrue(message(f).contains("too short"));
        assertTrue(message(dir.resolve("missing.safetensors")).contains("does not exist"));
    }
}
