import ReplicaCore
import ReplicaNBD

/// A volume of the node daemon as an NBD export: served while the resource is Primary; a
/// Secondary refuses, as DRBD refuses to open `/dev/drbdN` on a Secondary.
struct VolumeExport: NBDExportSource {
    let name: String
    let description: String
    let runtime: ReplicationRuntime
    let volume: UInt16

    init(resource: String, volume: UInt16, minor: Int, runtime: ReplicationRuntime) {
        name = resource
        description = "replica \(resource)/\(volume) (minor \(minor))"
        self.runtime = runtime
        self.volume = volume
    }

    func open() -> Result<any NBDBackend, NBDRefusal> {
        let state = runtime.snapshot(volume: volume)?.state ?? runtime.snapshot.state
        guard state.role == .primary else {
            return .failure(NBDRefusal("resource \(name) is \(state.role): only a Primary exports its volume (run 'replctl primary \(name)' on this node first)"))
        }
        return .success(ReplicatedVolumeBackend(runtime: runtime, volume: volume))
    }
}
