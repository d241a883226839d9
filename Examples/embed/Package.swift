// swift-tools-version:6.0
// Switchyard embedded as a library: a package that depends on it by path (a version-based
// dependency works the same once Switchyard is tagged).
import PackageDescription

let package = Package(
    name: "embed",
    dependencies: [.package(name: "Switchyard", path: "../..")],
    targets: [
        .executableTarget(name: "embed", dependencies: [.product(name: "Switchyard", package: "Switchyard")])
    ]
)
