internal import Glibc

/// A shared library loaded at run time (dlopen(3)), for optional system libraries such as libpq
/// that the default build must not link. Symbols come back as raw pointers; the caller casts them
/// to the `@convention(c)` type it declares. The library stays loaded for the process's life.
public struct DynamicLibrary: @unchecked Sendable {
  // @unchecked: the handle is an opaque token that dlsym(3) accepts from any thread.
  let handle: UnsafeMutableRawPointer

  /// dlopen(3) of the first name that loads; nil (with dlerror's text) when none does.
  public static func open(_ names: [String]) -> Result<DynamicLibrary, DynamicLibraryError> {
    // A static glibc's dlopen loads a second libc beside the one linked in, which works only
    // with the very glibc the program was linked with (and hung cluster mode when it did not).
    if Processes.isStaticExecutable {
      let what = names.first ?? "shared libraries"
      return .failure(
        DynamicLibraryError(
          message: "this cortex is the statically linked client, which cannot load \(what); "
            + "cortexd, installed beside it, runs the commands that need it"))
    }
    var last = ""
    for name in names {
      if let h = dlopen(name, RTLD_NOW | RTLD_LOCAL) { return .success(DynamicLibrary(handle: h)) }
      last = dlerror().map { String(cString: $0) } ?? "cannot load \(name)"
    }
    return .failure(DynamicLibraryError(message: last))
  }

  /// dlsym(3): the address of `name`, or nil.
  public func symbol(_ name: String) -> UnsafeMutableRawPointer? { dlsym(handle, name) }
}

public struct DynamicLibraryError: Error, CustomStringConvertible, Sendable {
  public let message: String
  public var description: String { message }
}
