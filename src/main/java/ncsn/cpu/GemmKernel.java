package ncsn.cpu;

/**
 * The instruction-set-specific half of {@link Gemm}: one implementation per kind of code (plain
 * Java in {@link ScalarGemm}, the Vector API in {@code ncsn.cpu.vector.VectorGemm}). {@link Gemm}
 * owns the rest: argument checks, the cache-blocking loops, buffers and threading. A kernel says
 * how it wants its operands blocked, packs them, and multiplies one packed block.
 *
 * <p>Packed layouts (both zero-padded to whole slivers, so a kernel may always compute full
 * {@code mr x nr} tiles):
 * <ul>
 *   <li>A block, {@code mc x kc}: {@code ceil(mc/mr)} slivers one after another; sliver {@code s}
 *       holds rows {@code s*mr .. s*mr+mr-1} column by column: element (row {@code s*mr+r},
 *       column {@code p}) is at {@code ap[ap0 + s*mr*kc + p*mr + r]}.
 *   <li>B panel, {@code kc x nc}: {@code ceil(nc/nr)} slivers; element (row {@code p}, column
 *       {@code s*nr+j}) is at {@code bp[bp0 + s*nr*kc + p*nr + j]}.
 * </ul>
 * Packing buffers always have {@link #PACK_SLACK} floats beyond the packed block, which a packer
 * may scribble on.
 */
public interface GemmKernel {
    /** Floats past the end of a packed block that a packer may overwrite. */
    int PACK_SLACK = 64;

    /** Short name for logs and benchmark tables ("scalar", "vector"). */
    String name();

    /** What the kernel runs on, for the log line (e.g. "jdk.incubator.vector, 512-bit, 16 floats/vector"). */
    default String description() {
        return name();
    }

    /** Rows of the register tile (rows of C computed per micro-kernel call). */
    int mr();

    /** Columns of the register tile (contiguous columns of C per micro-kernel call). */
    int nr();

    /** Depth of a packed block: A micro-panels {@code mr x kc} and B micro-panels {@code kc x nr}. */
    int kc();

    /** Rows of C per packed A block (a multiple of {@link #mr()}). */
    int mc();

    /** Columns of C per packed B panel (a multiple of {@link #nr()}). */
    int nc();

    /** {@link #kc()} for a product whose C has m rows (a kernel may block skinny products differently). */
    default int kc(int m) {
        return kc();
    }

    /** {@link #nc()} for a product whose C has m rows (a multiple of {@link #nr()}). */
    default int nc(int m) {
        return nc();
    }

    /**
     * C[mc x nc] (row-major at {@code c0}, leading dimension {@code ldc}) = alpha * Ap * Bp +
     * beta * C, with Ap and Bp packed as described above. {@code beta == 0} overwrites C without
     * reading it (NaN in C does not propagate). {@code tile} is scratch of at least
     * {@code mr * nr} floats.
     */
    void macroKernel(int mc, int nc, int kc, float alpha,
                     float[] ap, int ap0, float[] bp, int bp0,
                     float beta, float[] c, int c0, int ldc, float[] tile);

    /** Whether {@link #macroKernelRows} is implemented (B read where it is stored, not packed). */
    default boolean readsRowsInPlace() {
        return false;
    }

    /**
     * As {@link #macroKernel}, with B a row-major block read in place: element (p, j) at
     * {@code b[b0 + p*ldb + j]}. Like a packed panel it is read in whole slivers, so columns up to
     * nc rounded up to {@link #nr()} must exist in every row (what they hold only reaches
     * columns of the tile that are not stored). Worth it where B was just written by the caller
     * in L2-sized blocks (Winograd's transforms), so that packing would only copy it.
     */
    default void macroKernelRows(int mc, int nc, int kc, float alpha, float[] ap, int ap0,
                                 float[] b, int b0, int ldb, float beta, float[] c, int c0, int ldc,
                                 float[] tile) {
        throw new UnsupportedOperationException(name() + " kernel packs B");
    }

    /**
     * Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into {@code ap} from {@code ap0} (layout above),
     * where op(A)(i, p) is {@code a[offA + i*lda + p]}, or {@code a[offA + p*lda + i]} when
     * {@code transA}.
     */
    default void packA(boolean transA, float[] a, int offA, int lda, int i0, int mc, int p0, int kc,
                       float[] ap, int ap0) {
        ScalarGemm.packA(mr(), transA, a, offA, lda, i0, mc, p0, kc, ap, ap0);
    }

    /**
     * Packs op(B)[p0 .. p0+kc, j0 .. j0+nc] into {@code bp} from {@code bp0} (layout above),
     * where op(B)(p, j) is {@code b[offB + p*ldb + j]}, or {@code b[offB + j*ldb + p]} when
     * {@code transB}.
     */
    default void packB(boolean transB, float[] b, int offB, int ldb, int p0, int kc, int j0, int nc,
                       float[] bp, int bp0) {
        ScalarGemm.packB(nr(), transB, b, offB, ldb, p0, kc, j0, nc, bp, bp0);
    }

    /**
     * Part of a B panel's depth: rows [0, rows) of a row-major block (at {@code src[off]},
     * leading dimension {@code ld}, {@code nc} columns) into slivers that are {@code depth}
     * rows deep, row r of sliver s at {@code bp[bp0 + s*nr*depth + r*nr]}, columns past nc
     * zeroed. For a caller that fills a panel a few rows at a time from a small buffer (a
     * convolution's im2col rows); {@code packB} of an untransposed B is this with depth kc.
     */
    default void packBRows(float[] src, int off, int ld, int rows, int nc, int depth, float[] bp, int bp0) {
        ScalarGemm.packBRows(nr(), src, off, ld, rows, nc, depth, bp, bp0);
    }
}
