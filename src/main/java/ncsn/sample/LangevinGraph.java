package ncsn.sample;

import java.util.Locale;
import java.util.logging.Logger;
import ncsn.cuda.CudaContext;
import ncsn.cuda.CudaError;
import ncsn.cuda.CudaGraph;
import ncsn.cuda.DeviceAllocator;
import ncsn.tensor.DType;
import ncsn.tensor.Tensor;

/**
 * The Langevin steps of one noise level on CUDA replayed as one CUDA graph (switch:
 * {@code -Dncsn.cuda.graph=on|off}, default on; {@link ImageSampler#cudaGraph} overrides it).
 * Per level, with x, the score buffer s (and inpainting's mask / known) fixed for the level:
 * <ol>
 *   <li>{@link ScoreFunction#prepareCapture}: the level's labels go to the device once (CIN++
 *       reuses them), so the captured forward pass copies nothing from the host;</li>
 *   <li>{@link #warmScore}: the level's first step runs plainly, but with the allocator holding
 *       every released block ({@link DeviceAllocator#hold}), so that afterwards its cache holds a
 *       separate block for every temporary of a step: the capture is then served from the cache
 *       alone (a {@code cuMemAlloc} is not allowed inside a capture);</li>
 *   <li>{@link #capture}: score + fused update + a one-thread kernel advancing the Philox offset
 *       are captured from the stream, under a second hold that keeps the captured temporaries'
 *       blocks (their addresses are baked into the graph) out of everyone else's reach until
 *       {@link #close}. The update's scalars (step, sqrt(2 step), seed, stream, offset) live in a
 *       device buffer written once before the replays, so the graph needs no parameter updates;</li>
 *   <li>{@link #replay}: one {@code cuGraphLaunch} per remaining step of the level;</li>
 *   <li>{@link #close}: graph destroyed, held blocks returned, buffers freed.</li>
 * </ol>
 * The replayed kernels are the plain path's with the same arguments (the update's per-element
 * arithmetic is one shared device function, the offsets are the same integers), so the samples are
 * bit-identical to the plain path's. A {@link CudaError} while preparing, warming or capturing
 * gives up graphs with one logged line ({@link #failure}); the step is then done plainly, so a
 * failure never changes a result.
 */
public final class LangevinGraph implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(LangevinGraph.class.getName());
    /** The switch's system property. */
    public static final String PROPERTY = "ncsn.cuda.graph";

    private final ScoreFunction score;
    private final Tensor x;
    private final int level;
    private AutoCloseable prepared;
    private DeviceAllocator.Hold hold;
    private CudaGraph graph;
    private Tensor params;
    private String failure;

    /** Prepares the level (labels upload); a CudaError there is recorded as the failure. */
    public LangevinGraph(ScoreFunction score, Tensor x, int level) {
        this.score = score;
        this.x = x;
        this.level = level;
        try {
            prepared = score.prepareCapture(x, level);
            // Allocated before the warm-up step, not between it and the capture: taken from the
            // allocator's cache then, it could leave the capture one cached block short, and a
            // cuMemAlloc inside a capture fails it (seen on an H200: cuMemAlloc(512) at level 9).
            params = Tensor.persistent(x.device(), DType.F32, LangevinUpdate.Gpu.PARAM_FLOATS);
        } catch (CudaError e) {
            fail("preparing level " + level + ": " + e.getMessage());
        }
    }

    /**
     * -Dncsn.cuda.graph: "on" (or "true", the default, or unset) replays steps as CUDA graphs, "off"
     * (or "false") does not; anything else is an error naming the property. On by default since
     * the H200 measurement of 2026-11-28: 1.08x per sampling step at ngf 64, batch 25 (bench sample).
     */
    public static boolean enabledByProperty() {
        String v = System.getProperty(PROPERTY, "on").trim().toLowerCase(Locale.ROOT);
        switch (v) {
            case "on":
            case "true":
            case "":
                return true;
            case "off":
            case "false":
                return false;
            default:
                throw new IllegalArgumentException("-D" + PROPERTY + "=" + v + " is not one of on, off");
        }
    }

    /**
     * s = score(x, level), the level's first step, with released device blocks held (see the class
     * comment). On a CudaError (e.g. out of memory without block reuse) graphs are given up and
     * the score is computed again plainly.
     */
    public void warmScore(Tensor s) {
        if (failure == null) {
            DeviceAllocator.Hold h;
            try {
                h = CudaContext.get().allocator().hold();
            } catch (RuntimeException e) {
                fail("warm-up step: " + e.getMessage());
                h = null;
            }
            if (h != null) {
                try {
                    score.score(x, level, s);
                    return;
                } catch (CudaError e) {
                    fail("warm-up step of level " + level + ": " + e.getMessage());
                } finally {
                    h.close();
                }
            }
        }
        score.score(x, level, s);
    }

    /**
     * Captures score + update for the level's remaining steps, the first of them at Philox block
     * offset {@code offset}, each next one {@code stepBlocks} further. mask and known: both null or
     * both set (inpainting). Returns false, with {@link #failure} set and nothing left captured,
     * when graphs were given up or capture fails.
     */
    public boolean capture(Tensor s, Tensor mask, Tensor known, double step, long seed, long stream, long offset, long stepBlocks) {
        if (failure != null) return false;
        CudaContext ctx = CudaContext.get();
        try {
            // Looked up now: the capture itself only launches.
            ctx.function("langevin_update_dev_f32");
            ctx.function("langevin_params_advance_f32");
            LangevinUpdate.Gpu.setParams(params, step, seed, stream, offset);
            hold = ctx.allocator().hold();
            graph = CudaGraph.capture(ctx, () -> {
                score.score(x, level, s);
                LangevinUpdate.Gpu.updateFromParams(x, s, mask, known, params);
                LangevinUpdate.Gpu.advance(params, stepBlocks);
            });
            // A block still in use after the step would be freed (and reused) by its owner while the
            // graph still writes it. (A fresh cuMemAlloc inside the capture, if the driver allowed
            // it, is harmless: its block is kept by the hold like the cached ones.)
            if (hold.outstanding() != 0) {
                fail("capture of level " + level + ": " + hold.outstanding() + " device temporaries outlive the captured step");
                release();
                return false;
            }
            return true;
        } catch (CudaError | IllegalStateException e) {
            fail("capture of level " + level + ": " + e.getMessage());
            release();
            return false;
        }
    }

    /** One more step of the level: the captured score + update, on the stream. */
    public void replay() {
        graph.launch();
    }

    public boolean captured() {
        return graph != null;
    }

    /** Why graphs were given up, or null. */
    public String failure() {
        return failure;
    }

    private void fail(String why) {
        failure = why;
        LOG.warning("CUDA graph: " + why + "; sampling continues without CUDA graphs");
    }

    /** Graph, held blocks and the parameter buffer (not the prepared labels). */
    private void release() {
        try {
            if (graph != null) graph.close();
        } catch (CudaError e) { // harmless to results; an error that caused it is reported by whoever hit it
            LOG.warning("CUDA graph: destroying the graph of level " + level + " failed: " + e.getMessage());
        } finally {
            graph = null;
            if (hold != null) hold.close(); // after the graph is gone: its blocks are free for others again
            hold = null;
            if (params != null && params.isLive()) params.free();
            params = null;
        }
    }

    @Override
    public void close() {
        try {
            release();
        } finally {
            AutoCloseable p = prepared;
            prepared = null;
            if (p != null) {
                try {
                    p.close();
                } catch (Exception e) {
                    if (e instanceof RuntimeException r) throw r;
                    throw new IllegalStateException("CUDA graph: freeing the level's uploads failed", e);
                }
            }
        }
    }
}
