import CBLAS
import Dispatch

/// Matrix products on OpenBLAS. Sextant parallelizes across batches itself, so OpenBLAS is set
/// to one thread, once, the first time any product runs.
enum BLAS {
    private static let configured: Void = {
        openblas_set_num_threads(1)
    }()

    /// y[m×n] = x[m×k] · w[n×k]ᵀ (+ y if `accumulate`); row-major with leading dimensions.
    /// With `threads` > 1 the columns of y are split between that many threads (for a batch
    /// that is alone on the machine, such as one query).
    @inline(__always)
    static func matmulTransposedB(m: Int, n: Int, k: Int,
                                  x: UnsafePointer<Float>, ldx: Int,
                                  w: UnsafePointer<Float>, ldw: Int,
                                  y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool = false, threads: Int = 1) {
        _ = configured
        let parts = min(threads, n / 64)
        if parts <= 1 {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                        1, x, Int32(ldx), w, Int32(ldw), accumulate ? 1 : 0, y, Int32(ldy))
            return
        }
        let step = (n / parts + 15) / 16 * 16
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let c0 = p * step, c1 = min(n, c0 + step)
            guard c0 < c1 else { return }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(c1 - c0), Int32(k),
                        1, x, Int32(ldx), w + c0 * ldw, Int32(ldw), accumulate ? 1 : 0, y + c0, Int32(ldy))
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
