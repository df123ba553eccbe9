import Foundation
import ReplicaCore
import ReplicaNBD
import ReplicaTransportTCP
import Synchronization

extension NodeDaemon {
    /// `up RES|all` (`connect`: false for `attach` of a resource not up yet). Each resource is
    /// brought up under its lock; a resource that fails to come up leaves nothing behind: its
    /// disks given back as found, its exports and threads stopped.
    func up(_ request: ControlRequest, connect: Bool) -> ControlResponse {
        guard let name = request.resource else { return fail("up needs a resource name") }
        // `replctl up --metrics-address`: the daemon serves metrics there from now on.
        for flag in request.flags where flag.hasPrefix("metrics-address=") {
            do {
                try serveMetrics(at: try ConfigBuilder.commandLineAddress(String(flag.dropFirst("metrics-address=".count)), option: "--metrics-address"))
            } catch let error as ConfigError {
                return fail(error.description, 10)
            } catch {
                return fail("\(error)", 10)
            }
        }
        let configuration: Configuration
        do {
            configuration = try ConfigBuilder.load(path: request.config ?? configPath)
        } catch {
            return fail(error.description, 10)
        }
        let names = name == "all" ? configuration.resources.filter { $0.hosts.contains { $0.names.contains(nodeName) } }.map(\.name) : [name]
        for name in names {
            let response = locks.withLock(name) { () -> ControlResponse? in
                if instance(name) != nil { return nil }
                return bringUp(name, configuration, connect: connect)
            }
            if let response, response.exitCode != 0 { return response }
        }
        return ok()
    }

    /// Attaches, exports and (with `connect`) connects resource `name`; under its lock.
    /// `carrying`: the engines of the instance this one replaces (an `attach` that takes a
    /// Secondary down and up again), or those a `down` left whose meta-data writes failed.
    private func bringUp(_ name: String, _ configuration: Configuration, connect: Bool,
                         carrying previous: [UInt16: VolumeEngine]? = nil) -> ControlResponse {
        guard let resource = configuration.resource(named: name) else {
            return fail("'\(name)' not defined in your config (\(configuration.file)).", 10)
        }
        let transport: any Transport
        do {
            try ResourceSupport.check(resource, in: configuration, node: nodeName)
            transport = try TransportChoice.transport(for: resource, in: configuration, node: nodeName)
            // (ResourceAttachment.attach checks again: the library's path to a runtime.)
        } catch let error as ConfigError {
            return fail(error.description, 10)
        } catch {
            return fail("\(name): \(error)", 10)
        }
        // The host's `metrics-address`: served by this node's daemon for every resource.
        if let host = resource.hosts.first(where: { $0.names.contains(nodeName) }), let address = host.metricsAddress {
            do {
                try serveMetrics(at: address)
            } catch {
                return fail("\(host.location): \(error)", 10)
            }
        }
        let attachment: ResourceAttachment
        do {
            attachment = try ResourceAttachment.attach(configuration, resource: name, node: nodeName,
                                                       carrying: try previous ?? keptEngines(for: resource, in: configuration))
            forgetKeptEngines(of: attachment)
        } catch let error as ConfigError {
            return fail(error.description, 10)
        } catch {
            return fail("\(name): \(error)", 20)
        }
        let runtime = ReplicationRuntime(volumes: attachment.volumes, transport: transport, limits: attachment.limits,
                                         name: "\(name)-\(nodeName)", stateChanges: stateChanges)
        let peerIndex = resource.hosts.firstIndex { !$0.names.contains(nodeName) }
        let peer = peerIndex.map { resource.hosts[$0].names.first ?? "peer" } ?? "peer"
        let peerNodeID = peerIndex.map { resource.hosts[$0].nodeID ?? $0 } ?? 1
        let host = resource.hosts.first { $0.names.contains(nodeName) }
        var volumes: [InstanceVolume] = []
        do {
            for resolved in attachment.resolved {
                let number = UInt16(resolved.number)
                let source = VolumeExport(resource: name, volume: number, minor: resolved.device.minor, runtime: runtime)
                var exports: [NBDServer] = []
                do {
                    exports.append(try NBDServer(source: source, unixSocket: "\(runDirectory)/replica\(resolved.device.minor)", limits: nbdLimits))
                    // The TCP export serves the first volume (one address, one export).
                    if resolved.number == attachment.resolved[0].number, let nbdAddress = host?.nbdAddress {
                        do {
                            let tls: NBDTLSPolicy?
                            do {
                                tls = try host?.nbdTLS.flatMap { spec throws(TLSSetupError) in try NBDTLSPolicy.forExport(spec) }
                            } catch {
                                throw DaemonFailure("\(host?.nbdTLS.map { "\($0.location): " } ?? "")nbd-tls-certificates: \(error.message)")
                            }
                            exports.append(try NBDServer(source: source, tcp: try TCPEndpoint(nbdAddress), tls: tls, limits: nbdLimits))
                        } catch {
                            throw DaemonFailure("\(name): cannot export on nbd-address \(nbdAddress): \(error)")
                        }
                    }
                } catch {
                    for export in exports { export.stop() }
                    throw error
                }
                let backing = if case .path(let path) = resolved.disk { path } else { "none" }
                volumes.append(InstanceVolume(number: number, minor: resolved.device.minor, backingDevice: backing, exports: exports,
                                              foundFlags: attachment.foundSuperblock(of: resolved.number)?.flags))
            }
        } catch {
            for volume in volumes { for export in volume.exports { export.stop() } }
            runtime.shutdown(timeout: 1)
            return fail("\(error)", 20)
        }
        let instance = ResourceInstance(name: name, peerName: peer, peerNodeID: peerNodeID, runtime: runtime, volumes: volumes)
        guard instance.startExports() else {
            instance.down(timeout: 1)
            return fail("\(name): the NBD exports could not start (no thread)", 20)
        }
        resources.withLock { $0[name] = instance }
        guard connect else { return ok() }
        do {
            try runtime.connect()
        } catch {
            instance.down(timeout: 1)
            resources.withLock { $0[name] = nil }
            return fail("\(name): \(error)", 10)
        }
        return ok()
    }

    /// `attach RES`: a resource not up is brought up without connecting; a Diskless volume
    /// takes its disk back — a Secondary by going down and up again on it (the handshake
    /// resyncs what it missed), a Primary in place on its live connection, its NBD clients
    /// still connected, resynced from the peer while it serves.
    func attach(_ request: ControlRequest) -> ControlResponse {
        guard let name = request.resource else { return fail("attach needs a resource name") }
        let existing = instance(name)
        guard let existing else { return up(request, connect: false) }
        return locks.withLock(name) { () -> ControlResponse in
            guard let instance = instance(name), instance === existing else { return fail("\(name) changed meanwhile; run attach again") }
            let volumes = instance.runtime.resourceSnapshot.volumes
            guard let detached = volumes.first(where: { $0.state.disk == .diskless }) else { return ok() }
            guard let volume = instance.volumes.first(where: { $0.number == detached.number }), volume.backingDevice != "none" else {
                return fail("\(name): has 'disk none' in its configuration: there is no disk to attach", ExitCodes.stateRefused)
            }
            let configuration: Configuration
            do {
                configuration = try ConfigBuilder.load(path: request.config ?? configPath)
            } catch {
                return fail("\(error)", 10)
            }
            guard detached.state.role == .secondary else {
                return attachInPlace(instance, volume: detached.number, configuration)
            }
            guard instance.openClients == 0 else {
                return fail("\(name): State change failed: (-12) Device is held open by someone", ExitCodes.stateRefused)
            }
            let wasConnecting = detached.state.connection != .standAlone
            let previous = instance.runtime.engines()
            instance.down()
            resources.withLock { $0[name] = nil }
            keepUnwrittenMetadata(of: instance)
            return bringUp(name, configuration, connect: wasConnecting, carrying: previous)
        }
    }

    /// `attach` of a Diskless Primary volume on its live connection.
    private func attachInPlace(_ instance: ResourceInstance, volume number: UInt16, _ configuration: Configuration) -> ControlResponse {
        let name = instance.name
        do {
            guard let resource = configuration.resource(named: name) else { return fail("'\(name)' not defined in your config (\(configuration.file)).", 10) }
            let resolver = NodeResolver(nodeName: nodeName)
            guard let resolved = try resolver.volumes(of: resource, in: configuration).first(where: { UInt16($0.number) == number }) else {
                return fail("\(name): volume \(number) is no longer in the configuration", 10)
            }
            let attachment = try VolumeAttachment.attach(resolved, net: resolver.netOptions(of: resource, in: configuration),
                                                         entropySeed: UInt64.random(in: 0...UInt64.max),
                                                         carrying: instance.runtime.engines()[number])
            if case .failure(let refusal) = instance.runtime.attachInPlace(attachment, volume: number) {
                try attachment.abandon()
                return fail("\(name): attach of the Diskless Primary refused: \(refusal)", ExitCodes.stateRefused)
            }
            return ok()
        } catch let error as ConfigError {
            return fail(error.description, 10)
        } catch {
            return fail("\(name): attach of the Diskless Primary refused: \(error)", ExitCodes.stateRefused)
        }
    }
}

extension NodeDaemon {
    /// After `down`: the engines of volumes whose meta-data writes failed, kept by disk.
    func keepUnwrittenMetadata(of instance: ResourceInstance) {
        let engines = instance.runtime.engines()
        unwrittenMetadata.withLock { kept in
            for volume in instance.volumes where volume.backingDevice != "none" {
                if let engine = engines[volume.number], engine.unwrittenMetadata != nil { kept[volume.backingDevice] = engine }
            }
        }
    }

    /// The kept engines of the disks `resource` attaches here, by volume number.
    func keptEngines(for resource: ResourceSpec, in configuration: Configuration) throws -> [UInt16: VolumeEngine] {
        guard unwrittenMetadata.withLock({ !$0.isEmpty }) else { return [:] }
        let volumes = try NodeResolver(nodeName: nodeName).volumes(of: resource, in: configuration)
        return unwrittenMetadata.withLock { kept in
            var carrying: [UInt16: VolumeEngine] = [:]
            for volume in volumes {
                guard case .path(let path) = volume.disk, let engine = kept[path] else { continue }
                carrying[UInt16(volume.number)] = engine
            }
            return carrying
        }
    }

    /// Forgets the kept engines of disks that are attached again (their meta-data now written).
    func forgetKeptEngines(of attachment: ResourceAttachment) {
        unwrittenMetadata.withLock { kept in
            for volume in attachment.resolved { if case .path(let path) = volume.disk { kept[path] = nil } }
        }
    }
}

/// A failure of the daemon with its message.
struct DaemonFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
