import Glibc

// Little-endian helpers on byte arrays.
@inline(__always) func putU32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) {
    b[o] = UInt8(truncatingIfNeeded: v)
    b[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
    b[o + 2] = UInt8(truncatingIfNeeded: v >> 16)
    b[o + 3] = UInt8(truncatingIfNeeded: v >> 24)
}

@inline(__always) func putU64(_ b: inout [UInt8], _ o: Int, _ v: UInt64) {
    putU32(&b, o, UInt32(truncatingIfNeeded: v))
    putU32(&b, o + 4, UInt32(truncatingIfNeeded: v >> 32))
}

@inline(__always) func getU32(_ b: [UInt8], _ o: Int) -> UInt32 {
    UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}

@inline(__always) func getU64(_ b: [UInt8], _ o: Int) -> UInt64 {
    UInt64(getU32(b, o)) | UInt64(getU32(b, o + 4)) << 32
}

/// Thin wrappers around positional file I/O that retry EINTR and short transfers.
struct FileHandle {
    let fd: Int32
    let path: String
    /// Test seam (unit tests set it through `@testable import`): when not 0, the next `datasync`
    /// reports this errno instead of syncing, as a disk that failed writeback would. A real EIO
    /// cannot be provoked on demand; the check costs one comparison per fdatasync.
    var injectedSyncErrno: Int32 = 0

    func preadFully(_ buf: inout [UInt8], count: Int, offset: Int, bufferOffset: Int = 0) throws(QueueError) -> Int {
        var done = 0
        while done < count {
            let n = buf.withUnsafeMutableBytes { p in
                pread(fd, p.baseAddress! + bufferOffset + done, count - done, off_t(offset + done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw QueueError(errno: errno, operation: "pread", path: path)
            }
            if n == 0 { break } // EOF
            done += n
        }
        return done
    }

    func pwriteFully(_ buf: [UInt8], offset: Int) throws(QueueError) {
        var done = 0
        while done < buf.count {
            let n = buf.withUnsafeBytes { p in
                pwrite(fd, p.baseAddress! + done, buf.count - done, off_t(offset + done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw QueueError(errno: errno, operation: "pwrite", path: path)
            }
            done += n
        }
    }

    /// fdatasync calls made through this handle (on the owner's thread; background syncs run on
    /// a duplicate elsewhere): tests check that the steady state makes none.
    var inlineSyncs = 0

    mutating func datasync() throws(QueueError) {
        inlineSyncs += 1
        if injectedSyncErrno != 0 {
            defer { injectedSyncErrno = 0 }
            throw QueueError(errno: injectedSyncErrno, operation: "fdatasync", path: path, detail: "injected by a test")
        }
        if fdatasync(fd) != 0 {
            throw QueueError(errno: errno, operation: "fdatasync", path: path)
        }
    }

    func size() throws(QueueError) -> Int {
        var st = stat()
        if fstat(fd, &st) != 0 { throw QueueError(errno: errno, operation: "fstat", path: path) }
        return Int(st.st_size)
    }

    /// Make the file exactly `total` bytes with all blocks allocated.
    func preallocate(total: Int) throws(QueueError) {
        let cur = try size()
        if cur > total {
            if ftruncate(fd, off_t(total)) != 0 {
                throw QueueError(errno: errno, operation: "ftruncate", path: path)
            }
        }
        var e: Int32
        repeat { e = posix_fallocate(fd, 0, off_t(total)) } while e == EINTR
        guard e == 0 || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL else {
            throw QueueError(errno: e, operation: "fallocate", path: path)
        }
        // Write zeros over the new range even when fallocate worked: fallocate leaves
        // "unwritten" extents that later writes split, and the filesystem then needs extent
        // tree blocks, so the blocks allocated to the file would grow past its size. Written
        // zeros make the allocation final (done once, when the file is created or grows).
        let start = min(cur, total)
        let chunk = [UInt8](repeating: 0, count: 65536)
        var off = start
        while off < total {
            let n = min(chunk.count, total - off)
            try pwriteFully(n == chunk.count ? chunk : Array(chunk[0..<n]), offset: off)
            off += n
        }
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(QueueError) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
        prefix += comp
        if mkdir(prefix, 0o755) != 0 {
            let e = errno
            if e != EEXIST {
                throw QueueError(errno: e, operation: "mkdir", path: prefix)
            }
        }
        prefix += "/"
    }
    var st = stat()
    if stat(path, &st) != 0 { throw QueueError(errno: errno, operation: "stat", path: path) }
    if (st.st_mode & S_IFMT) != S_IFDIR { throw QueueError(errno: ENOTDIR, operation: "mkdir", path: path) }
}

/// fsync a directory so a rename/creation inside it is durable.
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        _ = fsync(fd)
        close(fd)
    }
}
