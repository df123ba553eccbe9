#if canImport(Glibc)
import Glibc
#endif
import CReplicaLinux
import ReplicaCore
import ReplicaTransportTCP

/// A minimal HTTP/1.1 server for Prometheus scrapes: `GET /metrics` (and `HEAD`) answers what
/// `render` returns, anything else gets 404, 405 or 400; one request per connection
/// (`Connection: close`). Clients are served one at a time on the endpoint's own thread, each
/// bounded in bytes (8 KiB of request) and in time (5 s to send it), so a slow or hostile
/// client delays a scrape by seconds at most and costs no memory beyond that. No
/// authentication or TLS: bind it to an address only the monitoring system reaches.
public final class MetricsEndpoint: @unchecked Sendable {
    /// The address it listens on (`127.0.0.1:9942`, `[::1]:9942`).
    public let address: String
    private let listening: OwnedDescriptor
    private let render: @Sendable () -> String
    private var thread: JoinableThread?

    /// Longest request read (request line and headers).
    static let largestRequest = 8 << 10
    /// Time a client has to send its request, and to take the answer.
    static let clientTimeoutSeconds = 5

    /// Listens on `endpoint` (IPv4 or IPv6); `render` makes the exposition for each scrape.
    /// - Throws: when the address cannot be bound (in use, not local).
    public init(endpoint: TCPEndpoint, render: @escaping @Sendable () -> String) throws(TransportError) {
        listening = OwnedDescriptor(try endpoint.listeningSocket(backlog: 16))
        address = endpoint.address.hostAndPort
        self.render = render
    }

    /// Starts serving on a dedicated thread. False when the system refuses a thread.
    @discardableResult
    public func start() -> Bool {
        thread = JoinableThread.start(name: "replica-metrics") { [self] in acceptLoop() }
        return thread != nil
    }

    /// Stops listening and waits for the endpoint's thread (a scrape being answered ends first).
    public func stop() {
        listening.close()
        thread?.join()
        thread = nil
    }

    private func acceptLoop() {
        while true {
            guard let client = listening.use({ CReplicaLinux_accept_cloexec($0) }) else { return }
            guard client >= 0 else {
                if errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE { continue }
                return
            }
            serve(client)
            close(client)
        }
    }

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: Self.clientTimeoutSeconds, tv_usec: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let request = readRequest(client) else { return }
        let answer = Self.answer(to: request, render: render)
        writeAll(client, answer)
        shutdown(client, Int32(SHUT_WR))
    }

    /// The request line and headers, up to the blank line (nil: the client went away or
    /// sent too much or too slowly — it gets 400 for too much).
    private func readRequest(_ client: Int32) -> String? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while received.count < Self.largestRequest {
            let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return nil }
            received += buffer[..<count]
            if received.count >= 4, Self.headerEnd(received) != nil { return String(decoding: received, as: UTF8.self) }
        }
        writeAll(client, Self.response(400, "Bad Request", body: "request longer than \(Self.largestRequest) bytes\n"))
        return nil
    }

    private static func headerEnd(_ bytes: [UInt8]) -> Int? {
        let end: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4 else { return nil }
        return (0...(bytes.count - 4)).first { bytes[$0..<($0 + 4)].elementsEqual(end) }
    }

    /// The response to `request` (its text up to the blank line).
    static func answer(to request: String, render: () -> String) -> [UInt8] {
        let line = request.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let words = line.split(separator: " ")
        guard words.count == 3, words[2].hasPrefix("HTTP/1.") else {
            return response(400, "Bad Request", body: "malformed request line\n")
        }
        let path = words[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard path == "/metrics" else { return response(404, "Not Found", body: "Replica serves its metrics at /metrics\n") }
        switch words[0] {
        case "GET": return response(200, "OK", body: render(), contentType: PrometheusExposition.contentType)
        case "HEAD": return response(200, "OK", body: render(), contentType: PrometheusExposition.contentType, headOnly: true)
        default: return response(405, "Method Not Allowed", body: "only GET and HEAD\n", extraHeaders: "Allow: GET, HEAD\r\n")
        }
    }

    static func response(_ status: Int, _ reason: String, body: String, contentType: String = "text/plain; charset=utf-8",
                         extraHeaders: String = "", headOnly: Bool = false) -> [UInt8] {
        let bytes = Array(body.utf8)
        let head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bytes.count)\r\n\(extraHeaders)Connection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : bytes)
    }

    private func writeAll(_ client: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { send(client, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            sent += count
        }
    }
}
