import CBLAS
import Dispatch

/// Matrix products on OpenBLAS. Sextant parallelizes across batches itself, so OpenBLAS is set
/// to one thread, once, the first time any product runs.
enum BLAS {
    private static let configured: Void = {
        openblas_set_num_threads(1)
    }()

    /// Columns of one OpenBLAS call in `matmulTransposedB`. OpenBLAS picks its kernels and
    /// blocking by the shape of a call, so a fixed split keeps every output column's sums the
    /// same whatever the thread count.
    static let columnBlock = 256

    /// y[m×n] = x[m×k] · w[n×k]ᵀ (+ y if `accumulate`); row-major with leading dimensions.
    /// The columns are computed in fixed blocks of `columnBlock`, spread over `threads` threads
    /// (for a batch that is alone on the machine, such as one query). The result depends on
    /// m, n, k and the values only: not on the thread count or where the buffers lie.
    @inline(__always)
    static func matmulTransposedB(m: Int, n: Int, k: Int,
                                  x: UnsafePointer<Float>, ldx: Int,
                                  w: UnsafePointer<Float>, ldw: Int,
                                  y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false, threads: Int = 1) {
        _ = configured
        let blocks = (n + columnBlock - 1) / columnBlock
        func run(_ b: Int) {
            let c0 = b * columnBlock, c1 = min(n, c0 + columnBlock)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(c1 - c0), Int32(k),
                        1, x, Int32(ldx), w + c0 * ldw, Int32(ldw), accumulate ? 1 : 0, y + c0, Int32(ldy))
        }
        let parts = min(threads, blocks)
        if parts <= 1 {
            for b in 0..<blocks { run(b) }
            return
        }
        concurrentLoop(parts) { p in
            var b = p
            while b < blocks { run(b); b += parts }
        }
    }

    /// y[m×n] = a[m×k] · b[k×n]; row-major with leading dimensions.
    @inline(__always)
    static func matmul(m: Int, n: Int, k: Int,
                       a: UnsafePointer<Float>, lda: Int,
                       b: UnsafePointer<Float>, ldb: Int,
                       y: UnsafeMutablePointer<Float>, ldy: Int) {
        _ = configured
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda), b, Int32(ldb), 0, y, Int32(ldy))
    }
}
