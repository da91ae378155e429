// swift-tools-version: 6.0
import PackageDescription

/// The library targets build in the Swift 6 language mode (complete concurrency checking);
/// the command-line target and the tests stay in Swift 5 mode.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Sextant",
    platforms: [.macOS(.v15)],   // Synchronization.Mutex
    products: [
        .library(name: "Sextant", targets: ["Sextant"]),
        .executable(name: "sextant", targets: ["sextant"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System library (apt: liblz4-dev), found through pkg-config.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        // Our numeric kernels (GEMMs, attention, norms, activations, distances). No FP
        // contraction: an a * b + c is fused only where a kernel says so, on every path alike.
        .target(name: "CKernels",
                cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),

        .target(name: "Tokenizers", swiftSettings: swift6),
        .target(name: "Inference", dependencies: ["CKernels"], swiftSettings: swift6),
        .target(name: "Embedding", dependencies: ["Tokenizers", "Inference"], swiftSettings: swift6),
        .target(name: "VectorIndex", dependencies: ["CLZ4", "CKernels"], swiftSettings: swift6),
        .target(name: "Store", dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: swift6),
        .target(name: "Sextant", dependencies: ["Embedding", "Store", "VectorIndex"],
                swiftSettings: swift6),
        .target(name: "SextantServer", dependencies: [
            "Sextant",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOHTTP1", package: "swift-nio"),   // to tell a client's hang-up from a server fault
        ], swiftSettings: swift6),
        .executableTarget(name: "sextant", dependencies: [
            "Sextant",
            "SextantServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference"]),
        .testTarget(name: "EmbeddingTests", dependencies: ["Embedding"]),
        .testTarget(name: "VectorIndexTests", dependencies: ["VectorIndex"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(name: "SextantTests", dependencies: ["Sextant"]),
        .testTarget(name: "SextantCLITests", dependencies: ["sextant", "Sextant", "Store"]),
        .testTarget(name: "SextantServerTests", dependencies: [
            "SextantServer",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
