import Foundation

/// Small file helpers for tests.
enum FileManagerShim {
    static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    static func write(_ path: String, _ text: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func temporaryPath(_ name: String) -> String {
        "/tmp/replica-test-\(name)-\(UInt32.random(in: 0...UInt32.max))"
    }
}
