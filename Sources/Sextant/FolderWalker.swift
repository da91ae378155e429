import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file found by the walker.
public struct FoundFile: Sendable {
    public let url: URL
    /// Path relative to the folder it was found under.
    public let relativePath: String
}

/// Walks folders for indexable files: skips hidden entries, the usual junk folders, binary
/// files and what `.gitignore` files exclude; follows symlinks but never visits a directory
/// twice, so links cannot make it loop.
public struct FolderWalker {
    public var include: [String] = []
    public var exclude: [String] = []
    public static let junkDirectories: Set<String> = ["node_modules", "__pycache__", "venv", "target", "dist", "build"]
    /// Called for each skipped item worth telling the user about.
    public var warn: (String) -> Void = { _ in }

    public init(include: [String] = [], exclude: [String] = [], warn: @escaping (String) -> Void = { _ in }) {
        self.include = include
        self.exclude = exclude
        self.warn = warn
    }

    /// All indexable files under `root`, in a stable order.
    public func files(under root: URL) -> [FoundFile] {
        var result: [FoundFile] = []
        var visited = Set<String>()
        walk(root, relative: "", ignores: [], visited: &visited, into: &result)
        return result
    }

    private struct IgnoreRule {
        let base: String        // relative dir of the .gitignore, "" for the root
        let pattern: String
        let negated: Bool
        let directoryOnly: Bool
        let anchored: Bool

        func matches(_ relative: String, isDirectory: Bool) -> Bool {
            if directoryOnly && !isDirectory { return false }
            guard base.isEmpty || relative.hasPrefix(base + "/") else { return false }
            let local = base.isEmpty ? relative : String(relative.dropFirst(base.count + 1))
            if anchored { return fnmatch(pattern, local, FNM_PATHNAME) == 0 }
            let name = local.split(separator: "/").last.map(String.init) ?? local
            return fnmatch(pattern, name, 0) == 0 || fnmatch("*/" + pattern, local, 0) == 0
        }
    }

    private func parseGitignore(_ url: URL, base: String) -> [IgnoreRule] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(whereSeparator: \.isNewline).compactMap { raw in
            var line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { return nil }
            var negated = false
            if line.hasPrefix("!") { negated = true; line.removeFirst() }
            var directoryOnly = false
            if line.hasSuffix("/") { directoryOnly = true; line.removeLast() }
            if line.hasPrefix("**/") { line.removeFirst(3) }
            let anchored = line.contains("/")
            if line.hasPrefix("/") { line.removeFirst() }
            guard !line.isEmpty else { return nil }
            return IgnoreRule(base: base, pattern: line, negated: negated, directoryOnly: directoryOnly, anchored: anchored)
        }
    }

    private func ignored(_ relative: String, isDirectory: Bool, rules: [IgnoreRule]) -> Bool {
        var result = false
        for rule in rules where rule.matches(relative, isDirectory: isDirectory) { result = !rule.negated }
        return result
    }

    private func walk(_ dir: URL, relative: String, ignores: [IgnoreRule], visited: inout Set<String>, into result: inout [FoundFile]) {
        let real = dir.resolvingSymlinksInPath().path
        guard visited.insert(real).inserted else { return }
        let fm = FileManager.default
        let names: [String]
        do {
            names = try fm.contentsOfDirectory(atPath: dir.path).sorted()
        } catch {
            warn("\(dir.path): cannot list the folder (\(error.localizedDescription)); skipped")
            return
        }
        var rules = ignores
        if names.contains(".gitignore") {
            rules += parseGitignore(dir.appendingPathComponent(".gitignore"), base: relative)
        }
        for name in names where !name.hasPrefix(".") {
            let url = dir.appendingPathComponent(name)
            let rel = relative.isEmpty ? name : relative + "/" + name
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { continue }   // dangling link or vanished
            if isDir.boolValue {
                if Self.junkDirectories.contains(name) || ignored(rel, isDirectory: true, rules: rules) { continue }
                if exclude.contains(where: { fnmatch($0, rel, 0) == 0 || fnmatch($0, name, 0) == 0 }) { continue }
                walk(url, relative: rel, ignores: rules, visited: &visited, into: &result)
            } else {
                if ignored(rel, isDirectory: false, rules: rules) { continue }
                if exclude.contains(where: { fnmatch($0, rel, 0) == 0 || fnmatch($0, name, 0) == 0 }) { continue }
                if !include.isEmpty && !include.contains(where: { fnmatch($0, rel, 0) == 0 || fnmatch($0, name, 0) == 0 }) { continue }
                guard TextExtractor.kind(of: url) != nil else { continue }
                result.append(FoundFile(url: url, relativePath: rel))
            }
        }
    }
}
