import ArgumentParser
import ReplicaCore
import ReplicaNBD
import ReplicaTransportTCP

/// `replctl tls-check RES`: loads this node's TLS keys and certificates as the resource file
/// names them, checks them against the file (host names, validity, key and certificate, CA
/// chain) and prints what this node presents and what it expects from the peer — the
/// replication link (`tls yes`) and the TCP NBD export (`nbd-tls`). Exit code 10 when
/// something would make a connection fail.
struct TLSCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls-check",
        abstract: "Check a resource's TLS keys and certificates against the resource file; print what is presented and expected.")

    @OptionGroup var options: ConfigOptions

    @Argument(help: "The resource.")
    var resource: String

    /// Certificates that expire sooner than this are pointed out.
    static let warningSeconds = 30 * 86_400

    func run() throws {
        try runReporting {
            let configuration = try options.load()
            guard let spec = configuration.resource(named: resource) else {
                throw CommandFailure(message: "'\(resource)' not defined in your config (\(options.config)).", code: ExitCodes.configuration)
            }
            let resolver = NodeResolver(nodeName: options.nodeName)
            let me: HostSpec
            do {
                me = try resolver.host(in: spec)
            } catch {
                throw CommandFailure(message: "\(error)", code: ExitCodes.configuration)
            }
            let myName = me.names.first { $0 == options.nodeName } ?? me.names.first ?? me.label
            let peerName = spec.hosts.first { $0 != me }.map { $0.names.first ?? $0.label } ?? "?"
            var report = Report()
            checkReplication(resolver.netOptions(of: spec, in: configuration), myName: myName, peerName: peerName, &report)
            checkExport(me, &report)
            FileOutput.standardOutput(report.lines.joined(separator: "\n") + "\n")
            if !report.problems.isEmpty {
                throw CommandFailure(message: "\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s"):\n"
                                     + report.problems.map { "  - \($0)" }.joined(separator: "\n"), code: ExitCodes.configuration)
            }
        }
    }

    struct Report {
        var lines: [String] = []
        var problems: [String] = []
        mutating func line(_ text: String) { lines.append(text) }
        mutating func problem(_ text: String) {
            problems.append(text)
            lines.append("    PROBLEM: \(text)")
        }
    }

    private func checkReplication(_ net: [OptionSetting], myName: String, peerName: String, _ report: inout Report) {
        func value(_ name: String) -> String? { net.last { $0.name == name && !$0.value.isEmpty }?.value }
        report.line("\(resource): replication link to \(peerName)")
        if let algorithm = value("cram-hmac-alg") {
            report.line("  peer authentication: cram-hmac-alg \(algorithm) with a shared secret")
        }
        guard value("tls") == "yes" else {
            report.line("  tls no: the replication link is not encrypted")
            return
        }
        do {
            try ResourceSupport.checkTLS(net)
        } catch {
            report.problem(error.description)
            return
        }
        let certificate = value("tls-certificate")!, key = value("tls-privkey")!
        report.line("  this node (\(myName)) presents \(certificate)")
        describe(certificate, option: "tls-certificate", expectedName: myName, ca: value("tls-ca"), &report)
        let settings = TLSSettings(certificateFile: certificate, privateKeyFile: key, caFile: value("tls-ca"),
                                   peerFingerprint: value("tls-peer-fingerprint").flatMap(HexText.fingerprint),
                                   cipherSuites: value("tls-ciphersuites"))
        do {
            _ = try TLSContext(settings)
            report.line("    key: \(key) (the certificate's)")
        } catch {
            report.problem(error.description)
        }
        report.line("  expects from \(peerName): a certificate naming '\(peerName)'")
        if let ca = value("tls-ca") { report.line("    issued by a CA in \(ca)") }
        if let pin = value("tls-peer-fingerprint") { report.line("    with SHA-256 fingerprint \(pin)\(value("tls-ca") == nil ? " (pinned; no CA)" : "")") }
        report.line("  TLS 1.3, cipher suites: \(value("tls-ciphersuites") ?? "OpenSSL's defaults")")
    }

    private func checkExport(_ me: HostSpec, _ report: inout Report) {
        guard let address = me.nbdAddress else { return }
        guard let tls = me.nbdTLS, tls.mode != "off" else {
            report.line("\(resource): NBD export on \(address): no TLS (nbd-tls off)")
            return
        }
        report.line("\(resource): NBD export on \(address): TLS \(tls.mode == "require" ? "required" : "offered") (STARTTLS)")
        if let file = tls.preSharedKeys {
            do {
                let keys = try NBDTLSPolicy.preSharedKeys(file)
                _ = try TLSContext(preSharedKeys: keys)
                report.line("  pre-shared keys from \(file): \(keys.map { "\($0.identity) (\($0.key.count * 8) bits)" }.joined(separator: ", "))")
            } catch {
                report.problem(error.description)
            }
            return
        }
        guard let directory = tls.certificates else { return }
        report.line("  presents \(directory)/server-cert.pem")
        describe(directory + "/server-cert.pem", option: "nbd-tls-certificates", expectedName: nil, ca: nil, &report)
        do {
            if let policy = try NBDTLSPolicy.forExport(tls) {
                report.line("    key: \(directory)/server-key.pem (the certificate's)")
                report.line(policy.context.settings?.caFile.map { "  client certificates: required, from a CA in \($0)" } ?? "  client certificates: not asked for (no ca-cert.pem)")
            }
        } catch {
            report.problem("nbd-tls-certificates \(directory): \(error.description)")
        }
    }

    /// Prints what `path` holds and records what would fail.
    private func describe(_ path: String, option: String, expectedName: String?, ca: String?, _ report: inout Report) {
        let inspection: CertificateInspection
        do {
            inspection = try CertificateInspection(path: path, option: option)
        } catch {
            report.problem(error.description)
            return
        }
        report.line("    subject: \(inspection.subject)")
        report.line("    issuer: \(inspection.issuer)")
        if !inspection.alternativeNames.isEmpty { report.line("    names: \(inspection.alternativeNames)") }
        report.line("    valid: \(inspection.notBefore) to \(inspection.notAfter)")
        report.line("    SHA-256 fingerprint: \(inspection.fingerprint)")
        if let expectedName, !inspection.names(expectedName) {
            report.problem("\(path) does not name this node '\(expectedName)': the peer will refuse it (hostname mismatch)")
        }
        if inspection.notYetValid { report.problem("\(path) is not valid yet (from \(inspection.notBefore))") }
        if let seconds = inspection.expiresIn {
            if seconds < 0 {
                report.problem("\(path) expired on \(inspection.notAfter)")
            } else if seconds < Self.warningSeconds {
                report.line("    note: expires in \(seconds / 86_400) days")
            }
        }
        if let ca {
            if let failure = inspection.verification(againstCA: ca) {
                report.line("    note: does not verify against this node's tls-ca \(ca) (\(failure)); the peer's tls-ca must hold its CA")
            } else {
                report.line("    verifies against tls-ca \(ca)")
            }
        }
    }
}
