import ArgumentParser
import Foundation
import Sextant

/// `sextant`: the command-line face of the engine. It only translates arguments and text to
/// library calls and back.
struct SextantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sextant",
        abstract: "Local semantic search with a built-in embedder.",
        subcommands: [IndexCommand.self, ImportCommand.self, FingerprintCommand.self, SearchCommand.self, DocsCommand.self, TaskCommand.self, InfoCommand.self, RemoveCommand.self,
                      ReindexCommand.self, EvalCommand.self, EmbedCommand.self, RerankCommand.self, BenchANNCommand.self, ServeCommand.self,
                      CPUCommand.self])
}

/// Prints one clear line to stderr and exits non-zero.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// The model folder: `--model`, else `$SEXTANT_MODEL`, else `models/all-MiniLM-L6-v2`.
func modelURL(_ option: String?) -> URL {
    let path = option ?? ProcessInfo.processInfo.environment["SEXTANT_MODEL"] ?? "models/all-MiniLM-L6-v2"
    return URL(fileURLWithPath: path)
}

func loadEmbedder(_ model: String?, batchTokens: Int? = nil, threads: Int? = nil, promptFormat: PromptFormat? = nil,
                  precision: Precision = .f32) throws -> Embedder {
    do {
        return try Embedder(folder: modelURL(model), batchTokens: batchTokens ?? 4096, threads: threads, promptFormat: promptFormat,
                            precision: precision)
    } catch {
        throw fail("\(error)")
    }
}

/// The `--precision` value; on a CPU without a fast bf16 path, bf16 warns (it runs on portable code).
func precisionOption(_ text: String) throws -> Precision {
    guard let precision = Precision(rawValue: text) else { throw fail("--precision must be f32, bf16 or int8") }
    if precision == .bf16 && !Precision.bf16Supported { warnLine("this CPU has neither AVX-512 BF16 nor AVX2: bf16 runs on slow portable code (f32 is faster here)") }
    return precision
}

if let problem = CPUPaths.environmentProblem() {
    FileHandle.standardError.write(Data("error: \(problem)\n".utf8))
    exit(1)
}
SextantCommand.main()

/// `sextant fingerprint`: the model fingerprint a collection records (for `import --model-sha256`).
struct FingerprintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fingerprint", abstract: "Print a model folder's fingerprint (the sha256 a collection records; import --model-sha256 checks it).")
    @Option(help: "Model folder (default: $SEXTANT_MODEL, else models/all-MiniLM-L6-v2).") var model: String?

    func run() throws {
        print(try attempt { try Collection.modelFingerprint(of: modelURL(model)) })
    }
}

/// `sextant cpu`: which code paths this machine gets (chosen at run time).
struct CPUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cpu", abstract: "Show which code paths this CPU gets.")
    @Flag(help: "JSON output.") var json = false

    func run() throws {
        let fields: KeyValuePairs<String, String> = [
            "cpu": CPUPaths.model, "f32_gemm": CPUPaths.f32GEMM, "bf16_gemm": CPUPaths.bf16GEMM,
            "int8_gemm": CPUPaths.int8GEMM, "vector_kernels": CPUPaths.vectorKernels, "ceiling": CPUPaths.ceiling,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value) }),
                                                  options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("""
            cpu:             \(CPUPaths.model)
            f32 GEMM:        \(CPUPaths.f32GEMM)
            bf16 GEMM:       \(CPUPaths.bf16GEMM)
            int8 GEMM:       \(CPUPaths.int8GEMM)
            vector kernels:  \(CPUPaths.vectorKernels) (distances, int8 codes, norms, activations)
            ceiling:         \(CPUPaths.ceiling) ($SEXTANT_CPU_PATH; every path gives the same bits)
            """)
    }
}
