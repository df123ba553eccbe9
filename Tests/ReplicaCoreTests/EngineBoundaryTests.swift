import Foundation
import Testing

/// The sans-I/O boundary is the `ReplicaEngine` target: it must import nothing that does I/O,
/// and the package manifest must give it no dependency (no C shim, no package).
@Suite("Engine boundary")
struct EngineBoundaryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Modules the engine may import: the standard library's own (none needed today).
    static let allowedImports: Set<String> = ["Synchronization"]

    @Test func theEngineTargetImportsNoFoundationDispatchGlibcOrShim() throws {
        let folder = Self.root.appendingPathComponent("Sources/ReplicaEngine")
        let enumerator = try #require(FileManager.default.enumerator(atPath: folder.path))
        var files = 0
        while let path = enumerator.nextObject() as? String {
            guard path.hasSuffix(".swift") else { continue }
            files += 1
            let text = try String(contentsOfFile: folder.appendingPathComponent(path).path, encoding: .utf8)
            for line in text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                #expect(!line.hasPrefix("#if canImport"), "\(path): \(line)")
                #expect(!line.contains("@_implementationOnly"), "\(path): \(line)")
                guard line.hasPrefix("import ") || line.contains(" import ") && line.hasPrefix("@") else { continue }
                let module = line.split(separator: " ").last.map(String.init) ?? ""
                let base = module.split(separator: ".").first.map(String.init) ?? module
                #expect(Self.allowedImports.contains(base), "\(path) imports \(module)")
            }
            for call in ["DispatchQueue", "Thread.", "socket(", "Date()", "ContinuousClock", "pread(", "pwrite(", "fdatasync", "usleep"] {
                #expect(!text.contains(call), "\(path) mentions \(call)")
            }
        }
        #expect(files >= 30, "only \(files) files found under \(folder.path)")
    }

    @Test func theManifestGivesTheEngineNoDependency() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let start = try #require(manifest.range(of: #".target(name: "ReplicaEngine""#), "no ReplicaEngine target in Package.swift")
        // The target's declaration runs to its closing parenthesis.
        var depth = 0
        var end = start.lowerBound
        for index in manifest[start.lowerBound...].indices {
            let character = manifest[index]
            if character == "(" { depth += 1 }
            if character == ")" {
                depth -= 1
                if depth == 0 {
                    end = index
                    break
                }
            }
        }
        let declaration = manifest[start.lowerBound...end]
        #expect(!declaration.contains("dependencies"), "ReplicaEngine declares dependencies: \(declaration)")
        // And ReplicaCore re-exports it, so library users keep importing ReplicaCore.
        let reexport = try String(contentsOf: Self.root.appendingPathComponent("Sources/ReplicaCore/ReplicaCore.swift"), encoding: .utf8)
        #expect(reexport.contains("@_exported import ReplicaEngine"))
    }
}
