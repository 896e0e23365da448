internal import Glibc

/// The C library's elementary functions (the Swift standard library has none).
public enum Math {
  public static func log(_ x: Double) -> Double { Glibc.log(x) }
  public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
  public static func cos(_ x: Double) -> Double { Glibc.cos(x) }
}
