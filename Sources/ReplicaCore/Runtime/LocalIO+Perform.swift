extension LocalIO {
    /// Performs this operation on `disk` (blocking) and returns the result the engine expects.
    public func perform(on disk: any BlockTarget) -> LocalIOResult {
        do {
            switch self {
            case .read(let offset, let length): return .success(try disk.read(count: length, at: offset))
            case .write(let offset, let data): try disk.write(data, at: offset)
            case .flush: try disk.flush()
            case .discard(let offset, let length): try disk.discard(at: offset, length: length)
            }
            return .success([])
        } catch {
            return .failure(error)
        }
    }
}
