import CGridletSys
import Glibc
@testable import GridletAgent
import Testing

/// The code-page trim: all objects, or only those loaded after the first trim (the VEN's libcurl
/// and its libraries are opened later and trimmed after every poll).
@Suite struct CodePagesTests {
    @Test func trimsEveryObjectOrOnlyTheOnesLoadedLater() {
        let n = Int32(gridlet_loaded_object_count())
        #expect(n >= 3)   // the test binary, the vDSO, libc at least
        #expect(gridlet_trim_code_pages_from(0) > 0)
        #expect(gridlet_trim_code_pages_from(n) == 0)   // nothing was loaded after them
        #expect(gridlet_trim_code_pages_from(n - 1) > 0)
        // A library opened now (one nothing in the tests uses) is the one trimmed from `n` on.
        let h = dlopen("libexpatw.so.1", RTLD_NOW)
        #expect(h != nil)
        defer { if let h { dlclose(h) } }
        #expect(gridlet_loaded_object_count() == n + 1)
        #expect(gridlet_trim_code_pages_from(n) > 0)
    }
}
