import Foundation
import Testing
import ReplicaEngine
@testable import ReplicaMetrics

/// The metrics endpoint's HTTP answers and the mapping of states to drbd-reactor's names
/// (scrapes of real daemons: `scripts/daemon-integration.sh metrics`).
@Suite("Metrics endpoint")
struct MetricsEndpointTests {
    func answer(_ request: String) -> (status: String, body: String) {
        let text = String(decoding: MetricsEndpoint.answer(to: request, render: { "metric 1\n" }), as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (String(parts[0].split(separator: "\r\n")[0]), parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test("GET and HEAD of /metrics only; other paths 404, other methods 405, malformed requests 400")
    func answers() {
        #expect(answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == ("HTTP/1.1 200 OK", "metric 1\n"))
        #expect(answer("GET /metrics?name[]=drbd HTTP/1.0\r\n\r\n") == ("HTTP/1.1 200 OK", "metric 1\n"), "a query string is ignored")
        #expect(answer("HEAD /metrics HTTP/1.1\r\n\r\n") == ("HTTP/1.1 200 OK", ""))
        #expect(answer("GET / HTTP/1.1\r\n\r\n").status == "HTTP/1.1 404 Not Found")
        #expect(answer("POST /metrics HTTP/1.1\r\n\r\n").status == "HTTP/1.1 405 Method Not Allowed")
        #expect(answer("GET /metrics\r\n\r\n").status == "HTTP/1.1 400 Bad Request", "no version")
        #expect(answer("GET /metrics HTTP/2\r\n\r\n").status == "HTTP/1.1 400 Bad Request")
        #expect(answer("\r\n\r\n").status == "HTTP/1.1 400 Bad Request")
    }

    @Test("8.4 connection states under DRBD 9's names: the waits are Connecting, every state of a connection up is Connected")
    func connectionStates() {
        for state in ConnectionState.allCases {
            let name = PrometheusExposition.connectionState(state)
            #expect(PrometheusExposition.connectionStates.contains(name), "\(state) -> \(name)")
        }
        #expect(PrometheusExposition.connectionState(.wfConnection) == "Connecting")
        #expect(PrometheusExposition.connectionState(.syncTarget) == "Connected")
        #expect(PrometheusExposition.connectionState(.standAlone) == "StandAlone")
        #expect(PrometheusExposition.connectionState(.networkFailure) == "NetworkFailure")
    }
}
