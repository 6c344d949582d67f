// RunStamp: what only the FleetRun knows about a run, put into the run's own events on their
// way to the sinks: its id (the audit log's) in `runStarted` and `runFinished`, and the exit
// status in `runFinished`. The body of a run (the interpreter) reports the run finished
// before the status is decided (the stop signal comes last), so `runFinished` is held back
// until `finish(exitStatus:)`.

import Synchronization

final class RunStamp: EventSink {
  let id: String
  private let sink: any EventSink
  private let held = Mutex<Event?>(nil)

  init(id: String, sink: any EventSink) {
    self.id = id
    self.sink = sink
  }

  func emit(_ event: Event) {
    switch event {
    case .runStarted(let runbook, let check, let date, _):
      sink.emit(.runStarted(runbook: runbook, check: check, date: date, run: id))
    case .runFinished:
      held.withLock { $0 = event }
    default:
      sink.emit(event)
    }
  }

  /// Sends the held `runFinished`, if the body sent one, with the run's exit status.
  func finish(exitStatus: Int32) {
    guard case .runFinished(let outcomes, let interrupted, let error, _, _) = held.withLock({ $0 }) else { return }
    sink.emit(.runFinished(outcomes: outcomes, interrupted: interrupted, error: error, exitStatus: exitStatus, run: id))
  }
}
