package ncsn.io;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a
 * JSON header mapping each name to {dtype, shape, data_offsets} plus optional string
 * "__metadata__", then the raw little-endian data. Reading validates everything a corrupt or
 * hostile file could get wrong and reports it naming the file; writing is atomic (temp file,
 * fsync, rename), so a crash never leaves a half-written file under the final name.
 */
public final class SafeTensors {
    /** Largest header accepted (the format's own reference implementation uses 100 MB). */
    static final long MAX_HEADER = 100L << 20;

    /** One stored tensor: its dtype name as in the file ("F32", "I64", ...), shape and bytes. */
    public record Entry(String name, String dtype, long[] shape, ByteBuffer data) {
        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        public int[] intShape() {
            int[] s = new int[shape.length];
            for (int i = 0; i < s.length; i++) s[i] = Math.toIntExact(shape[i]);
            return s;
        }

        /** The values as a (not scope-owned) tensor of the given dtype; F32/F64/integer sources convert. */
        public Tensor toTensor(DType as) {
            int n = Math.toIntExact(numel());
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            if (as == DType.F32) {
                float[] a = new float[n];
                for (int i = 0; i < n; i++) a[i] = (float) value(b, i);
                return Tensor.wrap(a, intShape());
            }
            double[] a = new double[n];
            for (int i = 0; i < n; i++) a[i] = value(b, i);
            return Tensor.wrap(a, intShape());
        }

        /** Integer contents (I64, I32, I16, I8, U8) as int[]; fails clearly for other dtypes or overflow. */
        public int[] toIntArray() {
            int n = Math.toIntExact(numel());
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            int[] out = new int[n];
            for (int i = 0; i < n; i++) {
                long v = switch (dtype) {
                    case "I64" -> b.getLong(8 * i);
                    case "I32" -> b.getInt(4 * i);
                    case "I16" -> b.getShort(2 * i);
                    case "I8" -> b.get(i);
                    case "U8" -> b.get(i) & 0xFF;
                    default -> throw new IllegalArgumentException("tensor '" + name + "' has dtype " + dtype + ", not an integer type");
                };
                if (v != (int) v) throw new IllegalArgumentException("tensor '" + name + "' value " + v + " at " + i + " does not fit in int");
                out[i] = (int) v;
            }
            return out;
        }

        private double value(ByteBuffer b, int i) {
            return switch (dtype) {
                case "F64" -> b.getDouble(8 * i);
                case "F32" -> b.getFloat(4 * i);
                case "F16" -> Float.intBitsToFloat(halfToFloatBits(b.getShort(2 * i)));
                case "BF16" -> Float.intBitsToFloat((b.getShort(2 * i) & 0xFFFF) << 16);
                case "I64" -> b.getLong(8 * i);
                case "I32" -> b.getInt(4 * i);
                case "I16" -> b.getShort(2 * i);
                case "I8" -> b.get(i);
                case "U8" -> b.get(i) & 0xFF;
                case "BOOL" -> b.get(i) != 0 ? 1 : 0;
                default -> throw new IllegalStateException("unreachable dtype " + dtype);
            };
        }
    }

    /** A parsed file: entries in file order, and the string metadata. */
    public record Contents(Path file, Map<String, Entry> entries, Map<String, String> metadata) {
        public Entry get(String name) {
            return entries.get(name);
        }

        /** The entry, or a {@link SafeTensorsException} naming the file and the missing key. */
        public Entry require(String name) throws SafeTensorsException {
            Entry e = entries.get(name);
            if (e == null) throw new SafeTensorsException(file, "has no tensor named '" + name + "' (it has " + entries.keySet() + ")");
            return e;
        }
    }

    private static final Map<String, Integer> DTYPE_BYTES = Map.ofEntries(
            Map.entry("F64", 8), Map.entry("F32", 4), Map.entry("F16", 2), Map.entry("BF16", 2),
            Map.entry("I64", 8), Map.entry("I32", 4), Map.entry("I16", 2), Map.entry("I8", 1),
            Map.entry("U8", 1), Map.entry("BOOL", 1));

    private SafeTensors() {}

    // ---- reading ------------------------------------------------------------------------------

    public static Contents read(Path file) throws SafeTensorsException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new SafeTensorsException(file, "does not exist");
        } catch (IOException e) {
            throw new SafeTensorsException(file, "cannot be read: " + e.getMessage());
        }
        return parse(file, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN));
    }

    /** Parses a whole file held in memory; {@code file} only names it in messages. */
    public static Contents parse(Path file, ByteBuffer buf) throws SafeTensorsException {
        buf = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long size = buf.remaining();
        if (size < 8) throw new SafeTensorsException(file, "is " + size + " bytes long, too short for the 8-byte header length");
        long headerLen = buf.getLong(0);
        if (headerLen < 2 || headerLen > MAX_HEADER || headerLen > size - 8)
            throw new SafeTensorsException(file, "declares a header of " + Long.toUnsignedString(headerLen)
                    + " bytes but the file has " + (size - 8) + " bytes after the length field (truncated or not a safetensors file)");
        String json = StandardCharsets.UTF_8.decode(buf.slice(8, (int) headerLen)).toString();
        JsonObject header;
        try {
            JsonElement el = JsonParser.parseString(json);
            if (!el.isJsonObject()) throw new SafeTensorsException(file, "has a header that is not a JSON object");
            header = el.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new SafeTensorsException(file, "has a header that is not valid JSON (" + e.getMessage() + ")");
        }
        int dataStart = (int) (8 + headerLen);
        long dataLen = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        List<long[]> ranges = new ArrayList<>();
        for (Map.Entry<String, JsonElement> kv : header.entrySet()) {
            String name = kv.getKey();
            if (name.equals("__metadata__")) {
                if (!kv.getValue().isJsonObject()) throw new SafeTensorsException(file, "has a __metadata__ that is not an object");
                for (Map.Entry<String, JsonElement> m : kv.getValue().getAsJsonObject().entrySet()) {
                    if (!m.getValue().isJsonPrimitive() || !m.getValue().getAsJsonPrimitive().isString())
                        throw new SafeTensorsException(file, "metadata '" + m.getKey() + "' is not a string");
                    metadata.put(m.getKey(), m.getValue().getAsString());
                }
                continue;
            }
            String where = "tensor '" + name + "'";
            if (!kv.getValue().isJsonObject()) throw new SafeTensorsException(file, where + " is not described by an object");
            JsonObject o = kv.getValue().getAsJsonObject();
            String dtype = string(file, o, "dtype", where);
            Integer width = DTYPE_BYTES.get(dtype);
            if (width == null) throw new SafeTensorsException(file, where + " has unknown dtype '" + dtype + "' (known: " + DTYPE_BYTES.keySet() + ")");
            long[] shape = longs(file, o, "shape", where, -1);
            long[] off = longs(file, o, "data_offsets", where, 2);
            long numel = 1;
            for (long d : shape) {
                if (d < 0) throw new SafeTensorsException(file, where + " has a negative dimension in shape " + Arrays.toString(shape));
                numel = Math.multiplyExact(numel, d);
            }
            if (off[0] < 0 || off[1] < off[0] || off[1] > dataLen)
                throw new SafeTensorsException(file, where + " has data_offsets " + Arrays.toString(off)
                        + " outside the " + dataLen + "-byte data section");
            if (off[1] - off[0] != numel * width)
                throw new SafeTensorsException(file, where + " has " + (off[1] - off[0]) + " bytes of data but shape "
                        + Arrays.toString(shape) + " of " + dtype + " needs " + numel * width);
            ranges.add(new long[] {off[0], off[1], entries.size()});
            entries.add(new Entry(name, dtype, shape, buf.slice(dataStart + (int) off[0], (int) (off[1] - off[0]))));
        }
        ranges.sort(Comparator.comparingLong(r -> r[0]));
        for (int i = 1; i < ranges.size(); i++) {
            long[] a = ranges.get(i - 1), b = ranges.get(i);
            if (b[0] < a[1] && b[1] > b[0])
                throw new SafeTensorsException(file, "tensors '" + entries.get((int) a[2]).name() + "' and '"
                        + entries.get((int) b[2]).name() + "' overlap in the data section");
        }
        Map<String, Entry> byName = new LinkedHashMap<>();
        for (Entry e : entries) byName.put(e.name(), e);
        return new Contents(file, byName, metadata);
    }

    private static String string(Path file, JsonObject o, String key, String where) throws SafeTensorsException {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString())
            throw new SafeTensorsException(file, where + " has no string '" + key + "'");
        return e.getAsString();
    }

    private static long[] longs(Path file, JsonObject o, String key, String where, int len) throws SafeTensorsException {
        JsonElement e = o.get(key);
        if (e == null || !e.isJsonArray()) throw new SafeTensorsException(file, where + " has no array '" + key + "'");
        JsonArray a = e.getAsJsonArray();
        if (len >= 0 && a.size() != len) throw new SafeTensorsException(file, where + " has " + a.size() + " " + key + ", expected " + len);
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            try {
                out[i] = a.get(i).getAsJsonPrimitive().getAsBigInteger().longValueExact();
            } catch (RuntimeException ex) {
                throw new SafeTensorsException(file, where + " has a non-integer in '" + key + "': " + a.get(i));
            }
        }
        return out;
    }

    static int halfToFloatBits(short h) {
        int s = (h & 0x8000) << 16, e = (h >>> 10) & 0x1F, m = h & 0x3FF;
        if (e == 0x1F) return s | 0x7F800000 | (m << 13);
        if (e == 0) {
            if (m == 0) return s;
            float f = m * 0x1p-24f;
            return s | Float.floatToRawIntBits(f);
        }
        return s | ((e + 112) << 23) | (m << 13);
    }

    // ---- writing ------------------------------------------------------------------------------

    /** Collects tensors (float32/float64 as F32/F64, or int arrays as I64) and metadata, then writes atomically. */
    public static final class Writer {
        private final Map<String, Object> tensors = new LinkedHashMap<>();
        private final Map<String, long[]> shapes = new LinkedHashMap<>();
        private final Map<String, String> metadata = new LinkedHashMap<>();

        public Writer put(String name, Tensor t) {
            t.requireLive("safetensors write '" + name + "'");
            tensors.put(name, t.dtype() == DType.F32 ? t.f32().clone() : t.f64().clone());
            shapes.put(name, Arrays.stream(t.shape()).asLongStream().toArray());
            return this;
        }

        public Writer putLongs(String name, long[] values, long... shape) {
            tensors.put(name, values.clone());
            shapes.put(name, shape.length == 0 ? new long[] {values.length} : shape.clone());
            return this;
        }

        public Writer meta(String key, String value) {
            metadata.put(key, value);
            return this;
        }

        /** Writes to {@code file} atomically ({@link AtomicFiles}: temp file, fsync, rename, folder fsync). */
        public void write(Path file) throws IOException {
            JsonObject header = new JsonObject();
            if (!metadata.isEmpty()) {
                JsonObject m = new JsonObject();
                metadata.forEach(m::addProperty);
                header.add("__metadata__", m);
            }
            long offset = 0;
            for (Map.Entry<String, Object> kv : tensors.entrySet()) {
                Object a = kv.getValue();
                long bytes = a instanceof float[] f ? 4L * f.length : 8L * (a instanceof double[] d ? d.length : ((long[]) a).length);
                JsonObject o = new JsonObject();
                o.addProperty("dtype", a instanceof float[] ? "F32" : a instanceof double[] ? "F64" : "I64");
                JsonArray shape = new JsonArray();
                for (long d : shapes.get(kv.getKey())) shape.add(d);
                o.add("shape", shape);
                JsonArray off = new JsonArray();
                off.add(offset);
                off.add(offset + bytes);
                o.add("data_offsets", off);
                header.add(kv.getKey(), o);
                offset += bytes;
            }
            byte[] json = new Gson().toJson(header).getBytes(StandardCharsets.UTF_8);
            int padded = (json.length + 7) & ~7; // the data section starts 8-byte aligned
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(json);
            while (head.hasRemaining()) head.put((byte) ' ');
            head.flip();

            AtomicFiles.write(file, out -> {
                out.write(head.array(), 0, head.limit());
                ByteBuffer chunk = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
                for (Object a : tensors.values()) writeArray(out, chunk, a);
            });
        }

        private static void writeArray(OutputStream ch, ByteBuffer chunk, Object a) throws IOException {
            if (a instanceof float[] f) {
                for (float v : f) {
                    if (chunk.remaining() < 8) flush(ch, chunk);
                    chunk.putFloat(v);
                }
            } else if (a instanceof double[] d) {
                for (double v : d) {
                    if (chunk.remaining() < 8) flush(ch, chunk);
                    chunk.putDouble(v);
                }
            } else {
                for (long v : (long[]) a) {
                    if (chunk.remaining() < 8) flush(ch, chunk);
                    chunk.putLong(v);
                }
            }
            flush(ch, chunk);
        }

        private static void flush(OutputStream out, ByteBuffer chunk) throws IOException {
            out.write(chunk.array(), 0, chunk.position());
            chunk.clear();
        }
    }
}
