// An application that embeds a Replica node: it replicates its own volume to a peer and
// uses it as a block device, without any daemon.
//
//   swift run replica-embedded-node CONFIG RESOURCE NODE [--primary-force]
//
// Run it on both nodes; on the node that holds the data first pass --primary-force.
import Foundation
import ReplicaCore
import ReplicaTransportTCP

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: replica-embedded-node CONFIG RESOURCE NODE [--primary-force]\n".utf8))
    exit(1)
}
let (path, resource, node) = (arguments[1], arguments[2], arguments[3])

do {
    let configuration = try ConfigBuilder.load(path: path)
    let volume = try ReplicatedVolume(configuration: configuration, resource: resource, node: node,
                                      transport: try TCPTransport.forResource(configuration, resource, node: node))
    try volume.up()
    print("\(resource) on \(node): waiting for the peer...")
    guard volume.waitForConnection(timeout: 60) else {
        print("no connection within 60 s: \(volume.state)")
        exit(2)
    }
    if arguments.contains("--primary-force") {
        try volume.promote(force: true)
        _ = volume.waitForSync(timeout: 600)
        // The volume is a BlockTarget: write, flush (durable on both disks with protocol C), read.
        let message = Array("hello from \(node)\n".utf8) + [UInt8](repeating: 0, count: 512 - "hello from \(node)\n".utf8.count)
        try volume.write(message, at: 0)
        try volume.flush()
        let back = try volume.read(count: 512, at: 0)
        print("wrote and read back: \(String(decoding: back.prefix { $0 != 0 }, as: UTF8.self))", terminator: "")
    } else {
        _ = volume.waitForSync(timeout: 600)
    }
    print("state: \(volume.state)")
    volume.down()
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
