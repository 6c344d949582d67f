// Masters asked to exit while the run goes on (`SSHTransport.release`), without waiting for
// their answers on the cooperative pool.

import Foundation
import Synchronization

/// Requests to masters to exit whose answers are not waited for. Each request's connection
/// stays open until its master has gone (end of file): a master that finds its client gone
/// while it answers the hello drops the connection before it reads the "terminate" behind it.
/// Connections whose master is gone are closed at each new request; the rest at `closeAll`.
final class MasterExitRequests: Sendable {
  private let open = Mutex<[Int32]>([])

  deinit { closeAll() }

  /// Asks the master on `path` to exit (`MuxControl.exitRequest`): a connect and a send,
  /// nothing waited for.
  func request(path: String) {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return }
    guard MuxControl.connect(fd, path: path, timeout: 1) == .connected, MuxControl.send(fd, MuxControl.exitRequest) else {
      close(fd)
      return
    }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    open.withLock { fds in
      fds.removeAll(where: Self.closedIfGone)
      fds.append(fd)
    }
  }

  /// Closes every request's connection, answered or not.
  func closeAll() {
    open.withLock { fds in
      for fd in fds { close(fd) }
      fds = []
    }
  }

  /// Reads what the master sent on `fd` (answers are not looked at); closes `fd` and says so
  /// once it has closed its end.
  private static func closedIfGone(_ fd: Int32) -> Bool {
    var chunk = [UInt8](repeating: 0, count: 256)
    while true {
      let got = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
      if got > 0 { continue }
      if got < 0 && (errno == EAGAIN || errno == EINTR) { return false }
      close(fd)
      return true
    }
  }
}
