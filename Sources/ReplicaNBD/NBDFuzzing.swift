#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReplicaCore

/// Entry points for fuzzing the NBD server's parsers (`make fuzz`, and the corpus replay in
/// `make test`): not API for anything else.
@_spi(Fuzzing)
public enum NBDFuzzing {
    /// Runs one client session whose bytes are `input` against a server of a 1 MiB memory
    /// export: the greeting, option haggling, and transmission if the input gets there; the
    /// server's replies are read and dropped. Returns when the server has finished with the
    /// session.
    public static func session(_ input: [UInt8]) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { return }
        let server = NBDSocket(descriptor: fds[0])
        let client = fds[1]
        // The client's side: the input, then the end of its sending; the replies are drained.
        let writer = JoinableThread.start(name: "replica-nbd-fuzz") {
            input.withUnsafeBytes { bytes in
                var done = 0
                while done < bytes.count {
                    let n = send(client, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
                    if n <= 0 { break }
                    done += n
                }
            }
            shutdown(client, Int32(SHUT_WR))
            var sink = [UInt8](repeating: 0, count: 64 << 10)
            while recv(client, &sink, sink.count, 0) > 0 {}
        }
        guard let writer else {
            server.close()
            close(client)
            return
        }
        let source = FixedExport(name: "fuzz", description: "fuzzing", backend: Self.backend)
        if let outcome = try? NBDHandshake(socket: server, source: source).run(), case .transmission(let backend, let negotiated) = outcome {
            _ = NBDTransmission(socket: server, backend: backend, negotiated: negotiated, maximumInFlight: 4).run()
        }
        server.close()
        writer.join()
        close(client)
    }

    private static let backend = BlockTargetBackend(MemoryBlockTarget(size: 1 << 20), parallelism: 2)
}
