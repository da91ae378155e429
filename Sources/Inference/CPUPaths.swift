import CKernels
import Foundation

/// Which code paths this CPU gets, chosen at run time: for `sextant cpu` and bug reports. Every
/// path gives the same bits; they differ in speed only.
public enum CPUPaths {
    /// The processor's name from /proc/cpuinfo (empty where there is none).
    public static var model: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// The highest path allowed in this process ($SEXTANT_CPU_PATH): "best", "avx2" or "portable".
    public static var ceiling: String {
        switch sx_cpu_ceiling() {
        case SX_CPU_PORTABLE: return "portable"
        case SX_CPU_AVX2: return "avx2"
        default: return "best"
        }
    }

    /// The environment variables that lower code paths: `SEXTANT_CPU_PATH` every kernel, the
    /// others one family each. Each takes `avx2` or `portable` (or `best`: no change).
    public static let pathVariables = ["SEXTANT_CPU_PATH", "SEXTANT_F32_PATH", "SEXTANT_BF16_PATH", "SEXTANT_I8_PATH",
                                       "SEXTANT_VECTOR_PATH"]

    /// What is wrong with the path variables in `environment`, or nil: the kernels ignore a value
    /// they do not know, which would leave a run on other paths than its user asked for.
    public static func environmentProblem(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        for name in pathVariables {
            guard let value = environment[name], !value.isEmpty, !["best", "avx2", "portable"].contains(value) else { continue }
            return "\(name) is \(value.debugDescription); it takes avx2, portable or best (or unset it)"
        }
        return nil
    }

    /// Lowers every kernel's path for the rest of the process (tests compare the paths in one run).
    public static func limit(to ceiling: Ceiling) { sx_set_cpu_ceiling(ceiling.rawValue) }

    /// A ceiling for `limit(to:)`.
    public enum Ceiling: Int32, CaseIterable, Sendable {
        case portable = 0, avx2 = 1, best = 2
    }

    /// The f32 matrix products (the default precision, and attention at every precision).
    public static var f32GEMM: String {
        switch sx_f32_path() {
        case SX_F32_PATH_AVX512: return "AVX-512 (weights packed at load)"
        case SX_F32_PATH_AVX2: return "AVX2 + FMA (weights packed at load)"
        default: return "portable (weights packed at load)"
        }
    }

    /// The bf16 matrix products (`--precision bf16`).
    public static var bf16GEMM: String {
        switch sx_bf16_path() {
        case SX_BF16_PATH_AVX512: return "AVX512_BF16 (vdpbf16ps)"
        case SX_BF16_PATH_AVX2: return "AVX2 + FMA (bf16 weights widened in registers)"
        default: return "portable (slow)"
        }
    }

    /// The int8 matrix products (`--precision int8`).
    public static var int8GEMM: String {
        switch sx_i8_path() {
        case SX_I8_PATH_VNNI: return "AVX512_VNNI (vpdpbusd)"
        case SX_I8_PATH_AVX2: return "AVX2 (vpmaddubsw)"
        default: return "portable"
        }
    }

    /// Distances, int8 codes and the elementwise transformer kernels.
    public static var vectorKernels: String {
        switch sx_vector_level() {
        case 4: return "x86-64-v4 (AVX-512)"
        case 3: return "x86-64-v3 (AVX2 + FMA)"
        case 1: return "x86-64 baseline (SSE2)"
        default: return "generic"
        }
    }
}
