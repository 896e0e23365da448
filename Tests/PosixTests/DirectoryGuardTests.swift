import CortexCore
import Posix
import XCTest

@testable import CortexDaemon

/// The directory check's rules on a made-up file system (owners and modes root cannot always
/// create for real, symbolic links, missing entries); the end-to-end tests run it for real.
final class DirectoryGuardTests: XCTestCase {
  static let me: UInt32 = 1000

  struct FakeFS {
    var entries: [String: FileStatus] = [:]
    var links: [String: String] = [:]

    mutating func dir(_ p: String, owner: UInt32 = DirectoryGuardTests.me, mode: UInt32 = 0o700) {
      entries[p] = FileStatus(mode: 0o040000 | mode, owner: owner, group: owner, size: 4096, allocatedBytes: 4096)
    }
    mutating func file(_ p: String, owner: UInt32 = DirectoryGuardTests.me, mode: UInt32 = 0o600) {
      entries[p] = FileStatus(mode: 0o100000 | mode, owner: owner, group: owner, size: 10, allocatedBytes: 4096)
    }
    func resolve(_ p: String) -> String {
      for (from, to) in links where p == from || p.hasPrefix(from + "/") { return to + p.dropFirst(from.count) }
      return p
    }
    func check(_ root: String) -> DirectoryGuard.Refusal? {
      DirectoryGuard.check(
        Paths(root: root), user: DirectoryGuardTests.me,
        status: { (p: String) throws(PosixError) in entries[resolve(p)] },
        list: { d in entries.keys.filter { FileSystem.dirname($0) == resolve(d) }.map(FileSystem.basename) },
        realPath: { p in entries[resolve(p)] != nil ? resolve(p) : nil })
    }
  }

  func standard() -> FakeFS {
    var fs = FakeFS()
    fs.dir("/", owner: 0, mode: 0o755)
    fs.dir("/home", owner: 0, mode: 0o755)
    fs.dir("/home/me", mode: 0o755)
    fs.dir("/tmp", owner: 0, mode: 0o1777)
    return fs
  }

  func testAMissingDirectoryUnderOneWeOwnPasses() {
    XCTAssertNil(standard().check("/home/me/a/b/coord"))
    XCTAssertNil(standard().check("/tmp/coord"))
  }

  func testALaidOutDirectoryPassesAndEachLooseEntryIsNamed() {
    var fs = standard()
    let p = Paths(root: "/home/me/coord")
    for d in p.directories { fs.dir(d) }
    fs.file(p.config)
    fs.file(p.events + "/00000001.jsonl", mode: 0o644)
    XCTAssertNil(fs.check(p.root))
    fs.file(p.events + "/00000001.jsonl", mode: 0o664)
    XCTAssertEqual(fs.check(p.root)?.path, p.events + "/00000001.jsonl")
    XCTAssertTrue(fs.check(p.root)?.problem.contains("writable by its group (mode 0664)") ?? false)
    fs.file(p.events + "/00000001.jsonl")
    fs.file(p.taskQueue, owner: 0)
    XCTAssertEqual(fs.check(p.root)?.path, p.taskQueue, "root's files in our directory are not ours either")
    fs.file(p.taskQueue)
    fs.dir(p.inboxRejected, mode: 0o702)
    XCTAssertEqual(fs.check(p.root)?.fix, "chmod 700 \(p.inboxRejected) once you have checked what is in it")
  }

  func testParentsMayBeRootsOrStickyButNotAnotherUsers() {
    var fs = standard()
    fs.dir("/srv", owner: 0, mode: 0o775)
    XCTAssertEqual(fs.check("/srv/coord")?.path, "/srv", "group-writable and not sticky")
    fs.dir("/srv", owner: 0, mode: 0o1775)
    XCTAssertNil(fs.check("/srv/coord"))
    fs.dir("/home/bob", owner: 1001, mode: 0o755)
    XCTAssertEqual(fs.check("/home/bob/coord")?.path, "/home/bob")
    fs.dir("/tmp/coord", owner: 1001)
    XCTAssertEqual(fs.check("/tmp/coord")?.path, "/tmp/coord", "a sticky parent does not make another user's entry ours")
  }

  func testTheRealPathBehindASymbolicLinkIsCheckedToo() {
    var fs = standard()
    fs.dir("/shared", owner: 0, mode: 0o777)
    fs.dir("/shared/coord")
    fs.links["/home/me/link"] = "/shared/coord"
    XCTAssertEqual(fs.check("/home/me/link")?.path, "/shared")
    fs.dir("/shared", owner: 0, mode: 0o755)
    XCTAssertNil(fs.check("/home/me/link"))
  }

  func testTheAncestorsOfAPath() {
    XCTAssertEqual(DirectoryGuard.ancestors(of: "/a/b/c"), ["/", "/a", "/a/b"])
    XCTAssertEqual(DirectoryGuard.ancestors(of: "/a"), ["/"])
  }

  /// A relative path nothing of which resolves ("./coordination" in a deleted working directory):
  /// the walk ends at ".", whose parent is itself, instead of looping there.
  func testNearestExistingOfAnUnresolvableRelativePathEnds() {
    XCTAssertNil(DirectoryGuard.realPathOfNearestExisting("./coordination") { _ in nil })
    XCTAssertEqual(DirectoryGuard.realPathOfNearestExisting("./coordination") { $0 == "." ? "/w" : nil }, "/w/coordination")
  }
}
