import ReplicaCore
import ReplicaNBD

/// A volume of the node daemon as an NBD export: served while the resource is Primary; a
/// Secondary refuses, as DRBD refuses to open `/dev/drbdN` on a Secondary.
struct VolumeExport: NBDExportSource {
    let name: String
    let description: String
    let runtime: ReplicationRuntime

    init(resource: String, minor: Int, runtime: ReplicationRuntime) {
        name = resource
        description = "replica \(resource)/0 (minor \(minor))"
        self.runtime = runtime
    }

    func open() -> Result<any NBDBackend, NBDRefusal> {
        let state = runtime.snapshot.state
        guard state.role == .primary else {
            return .failure(NBDRefusal("resource \(name) is \(state.role): only a Primary exports its volume (run 'replctl primary \(name)' on this node first)"))
        }
        return .success(ReplicatedVolumeBackend(runtime: runtime))
    }
}
