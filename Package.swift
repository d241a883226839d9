// swift-tools-version:6.0
import PackageDescription

// Switchyard: a mixture-of-LoRA-experts routing engine. No SwiftPM dependencies:
// C libraries come from Debian (see Scripts/bootstrap).
let package = Package(
    name: "Switchyard",
    products: [
        .library(name: "Switchyard", targets: ["Switchyard"]),
        .executable(name: "switchyard", targets: ["switchyard"]),
    ],
    targets: [
        // OpenBLAS (cblas.h lives under /usr/include/x86_64-linux-gnu/openblas-pthread).
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // protobuf-c runtime for the router wire format.
        .systemLibrary(
            name: "CProtobufC", path: "Sources/CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),
        // gRPC C core. Linked with `link` lines in the module map: pkgConfig "grpc" expands to a
        // link line that is too long for the linker driver.
        .systemLibrary(
            name: "CGRPC", path: "Sources/CGRPC",
            providers: [.apt(["libgrpc-dev"])]),
        // Hand-written SIMD kernels where BLAS is weak (small-batch decode GEMM).
        .target(
            name: "CKernels",
            path: "Sources/CKernels",
            cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "Switchyard",
            dependencies: ["CBLAS", "CKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .executableTarget(
            name: "switchyard",
            dependencies: ["Switchyard"]),
        .testTarget(
            name: "SwitchyardTests",
            dependencies: ["Switchyard"],
            resources: [.copy("Fixtures")]),
    ]
)
