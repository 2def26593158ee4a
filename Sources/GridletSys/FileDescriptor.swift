/// A raw file descriptor, for output that must go out whole: log lines on stderr, a protocol on
/// stdout, a state file. `write(2)` may write less than asked (a pipe, a signal) or fail with
/// EINTR; `writeAll` continues until every byte is written or a real error occurs.
/// (Positional writes to the queue file are GridletQueue's own `FileHandle`.)
public struct FileDescriptor: RawRepresentable, Sendable, Hashable {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let standardOutput = FileDescriptor(rawValue: 1)
    public static let standardError = FileDescriptor(rawValue: 2)

    /// Writes all of `bytes` at the descriptor's current position, retrying EINTR and short
    /// writes. A write that makes no progress fails with EIO rather than spinning.
    public func writeAll(_ bytes: some Sequence<UInt8>) throws(Errno) {
        let result = bytes.withContiguousStorageIfAvailable { writeAll(UnsafeRawBufferPointer($0)) }
            ?? Array(bytes).withUnsafeBytes { writeAll($0) }
        try result.get()
    }

    private func writeAll(_ buffer: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        var done = 0
        while done < buffer.count {
            switch system_write(rawValue, UnsafeRawBufferPointer(rebasing: buffer[done...])) {
            case .success(0): return .failure(.ioError)
            case let .success(n): done += n
            case let .failure(error): return .failure(error)
            }
        }
        return .success(())
    }
}
