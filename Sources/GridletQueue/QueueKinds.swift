extension DiskQueue {
    /// Seqs of the unacknowledged records of `kind`, oldest first, from the in-memory index (no
    /// I/O): how a consumer of one class (the OpenADR reports) finds its backlog after a restart.
    public func unackedSeqs(kind: RecordKind) -> [UInt64] {
        guard !closed else { return [] }
        var out: [UInt64] = []
        for r in rings {
            for i in r.first..<r.entries.count where !r.entries[i].acked && r.entries[i].kind == kind { out.append(r.entries[i].seq) }
        }
        return out.sorted()
    }
}
