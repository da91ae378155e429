import Dispatch

/// Runs `body(i)` for every i in `0..<iterations` on Dispatch's worker threads and returns when
/// all have finished. Unlike `DispatchQueue.concurrentPerform`, `body` may capture buffers and
/// pointers that are not `Sendable`: the caller promises that the iterations write disjoint memory
/// (or synchronize themselves), which is how every hot loop here splits its work.
public func concurrentLoop(_ iterations: Int, _ body: (Int) -> Void) {
    guard iterations > 1 else {
        if iterations == 1 { body(0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let shared = LoopBody(run: body)
        DispatchQueue.concurrentPerform(iterations: iterations) { shared.run($0) }
    }
}

/// Carries a loop body into `concurrentPerform`. Unchecked because the body captures raw buffers;
/// it is safe because `concurrentLoop` does not return before every iteration has, and callers give
/// each iteration its own slice of the output.
private struct LoopBody: @unchecked Sendable {
    let run: (Int) -> Void
}
