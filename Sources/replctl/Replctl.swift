import ArgumentParser
import ReplicaCore

/// `replctl`: Replica's command line, modelled on `drbdadm`.
@main
struct Replctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replctl",
        abstract: "Replica: network RAID-1 for block storage, in user space (commands follow drbdadm).",
        discussion: """
            Exit codes: 0 success, 1 usage or other error, 10 configuration error, 20 meta-data error, \
            11 state change refused.
            """,
        subcommands: [
            Dump.self, CreateMetadata.self, DumpMetadata.self, ApplyActivityLog.self,
            ShowGenerationIdentifiers.self, GetGenerationIdentifiers.self, SetGenerationIdentifiers.self,
            DiskStateCommand.self, StateCheck.self, UUIDCompare.self, VersionCommand.self,
            DaemonCommand.self, Up.self, Down.self, Attach.self, Detach.self, Invalidate.self, InvalidateRemote.self, Outdate.self, PauseSync.self, ResumeSync.self, Primary.self, Secondary.self, Connect.self, Disconnect.self,
            NewCurrentUUID.self, RoleCommand.self, CStateCommand.self, Status.self, WaitCommand.self, WaitSyncCommand.self, Shutdown.self, WriteCommand.self, ReadCommand.self, Events.self, SimCommand.self, TLSCheck.self,
        ]
    )
}
