import ArgumentParser
import Foundation
import Sextant

/// `sextant`: the command-line face of the engine. It only translates arguments and text to
/// library calls and back.
struct SextantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sextant",
        abstract: "Local semantic search with a built-in embedder.",
        subcommands: [IndexCommand.self, SearchCommand.self, TaskCommand.self, InfoCommand.self, RemoveCommand.self,
                      ReindexCommand.self, EvalCommand.self, EmbedCommand.self, RerankCommand.self, BenchANNCommand.self, ServeCommand.self])
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

SextantCommand.main()
