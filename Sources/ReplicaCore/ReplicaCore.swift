// The engine's types (VolumeEngine, frames, states, meta-data values) are part of ReplicaCore's
// public API: a program that imports ReplicaCore sees them without importing ReplicaEngine.
@_exported import ReplicaEngine
