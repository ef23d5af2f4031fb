package ncsn.cuda;

import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstream;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.JCudaDriver;

/**
 * One instantiated CUDA graph of work captured from the backend's stream: {@link #capture} runs a
 * body whose launches (kernels, device-to-device copies, memsets) are recorded instead of executed
 * ({@code cuStreamBeginCapture} in thread-local mode, {@code cuStreamEndCapture},
 * {@code cuGraphInstantiate}); {@link #launch} replays it on the stream ({@code cuGraphLaunch});
 * {@link #close} destroys it.
 *
 * <p>What the caller must guarantee (the driver checks only part of it):
 * <ul>
 *   <li>the body only enqueues work: no synchronisation, no device-to-host copy, no copy from
 *       pageable host memory and no {@code cuMemAlloc}/{@code cuMemFree} (the driver rejects them
 *       during capture and the capture fails with a {@link CudaError});</li>
 *   <li>every device address the body used stays valid and unused by others for as long as the
 *       graph is replayed (see {@link DeviceAllocator#hold()});</li>
 *   <li>kernel arguments are captured by value: scalars that change between replays must be read
 *       from device memory by the kernels.</li>
 * </ul>
 * Any failure ends the capture, frees what was created and throws a {@link CudaError}; the stream
 * is then usable again (the caller falls back to plain launches).
 */
public final class CudaGraph implements AutoCloseable {
    /** Whether this thread is inside {@link #capture}'s body (host copies refuse to run there). */
    private static final ThreadLocal<Boolean> CAPTURING = ThreadLocal.withInitial(() -> false);

    private final CUstream stream;
    private CUgraph graph;
    private CUgraphExec exec;

    private CudaGraph(CUstream stream, CUgraph graph, CUgraphExec exec) {
        this.stream = stream;
        this.graph = graph;
        this.exec = exec;
    }

    /**
     * Captures what {@code body} enqueues on {@code ctx}'s stream and instantiates it.
     *
     * @throws CudaError when capture or instantiation fails (body's own CudaError included); with
     *     {@code -Dncsn.cuda.sync=true} (a synchronisation after every launch) capture is refused
     */
    public static CudaGraph capture(CudaContext ctx, Runnable body) {
        if (Boolean.getBoolean("ncsn.cuda.sync"))
            throw new CudaError("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
                    "CUDA graph capture is off under -Dncsn.cuda.sync=true (it synchronises after every launch)");
        CUstream stream = ctx.stream();
        CUgraph graph = new CUgraph();
        CudaContext.check("cuStreamBeginCapture(thread-local)",
                () -> JCudaDriver.cuStreamBeginCapture(stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
        CAPTURING.set(true);
        try {
            body.run();
        } catch (RuntimeException | Error e) {
            abandon(stream, graph);
            throw e;
        } finally {
            CAPTURING.set(false);
        }
        CudaContext.check("cuStreamEndCapture", () -> JCudaDriver.cuStreamEndCapture(stream, graph));
        CUgraphExec exec = new CUgraphExec();
        try {
            CudaContext.check("cuGraphInstantiate", () -> JCudaDriver.cuGraphInstantiate(exec, graph, 0L));
        } catch (CudaError e) {
            destroyQuietly(graph);
            throw e;
        }
        return new CudaGraph(stream, graph, exec);
    }

    /**
     * Throws when this thread is capturing: a host copy would be baked into the graph (reading
     * the host buffer at replay time) or break the capture, so {@link CudaBackend} refuses it and
     * the capture falls back cleanly.
     */
    static void refuseHostCopyWhileCapturing(String what) {
        if (CAPTURING.get())
            throw new CudaError("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", what + " inside a CUDA graph capture (upload before capturing)");
    }

    /** Ends a capture whose body failed; a graph the driver still returns is destroyed. Never throws. */
    private static void abandon(CUstream stream, CUgraph graph) {
        int rc;
        try {
            rc = JCudaDriver.cuStreamEndCapture(stream, graph);
        } catch (jcuda.CudaException e) {
            return; // invalidated capture: no graph was made, the stream is out of capture mode
        }
        if (rc == 0) destroyQuietly(graph);
    }

    private static void destroyQuietly(CUgraph graph) {
        try {
            JCudaDriver.cuGraphDestroy(graph);
        } catch (jcuda.CudaException ignored) {
            // best effort: the capture's failure is what gets reported
        }
    }

    /** Replays the graph on the stream (asynchronous, like a kernel launch). */
    public void launch() {
        if (exec == null) throw new IllegalStateException("CUDA graph was closed");
        CUgraphExec e = exec;
        CudaContext.check("cuGraphLaunch", () -> JCudaDriver.cuGraphLaunch(e, stream));
    }

    /** Destroys the executable graph and the graph (queued replays still complete). Idempotent. */
    @Override
    public void close() {
        CUgraphExec e = exec;
        CUgraph g = graph;
        exec = null;
        graph = null;
        try {
            if (e != null) CudaContext.check("cuGraphExecDestroy", () -> JCudaDriver.cuGraphExecDestroy(e));
        } finally {
            if (g != null) CudaContext.check("cuGraphDestroy", () -> JCudaDriver.cuGraphDestroy(g));
        }
    }
}
