// Enrollment for mass installation: the POSIX shell script `cfi-sh server bootstrap-script`
// prints, run as root on a freshly installed machine (a preseed late_command through
// `in-target`, a cloud-init runcmd). Two ways:
// - with the URL of cfi-sh's .deb: downloads and installs it, then enrolls with the group and
//   the server's fingerprint pinned (`--server-fingerprint`): at once on a live machine
//   (avahi-daemon running), else at boot through cfi-sh-enroll.service, which it enables;
// - without: writes what `cfi-sh client enroll` would (the avahi service file with the group,
//   the server's key line in root's authorized_keys, the pin), so the machine announces itself
//   at its first boot and lets the server in with no cfi-sh installed.
// The texts are those enrollment writes (`AvahiServiceFile.client`, `AuthorizedKeys.line`,
// `ServerPin.text`). Pure: the script is text; nothing here runs it.

import Foundation

/// The client bootstrap script for one server key and group.
public struct ClientBootstrap: Hashable, Sendable {
  public var key: ServerKey
  public var fingerprint: KeyFingerprint
  /// The group announced (nil: none, the server files the machine as `unknown`).
  public var group: GroupName?
  /// The client's sshd port, announced.
  public var port: Int
  /// Where cfi-sh's .deb is downloaded from (`http://` or `https://`); nil: no cfi-sh installed.
  public var packageURL: String?
  /// The SHA-256 the .deb must have (64 lowercase hex digits); nil: not checked.
  public var packageSHA256: String?
  /// Who made the script, for its first comment (e.g. `cfi-sh 0.9`).
  public var generator: String

  /// Where the unit that enrolls at boot reads its options.
  public static let defaultsFile = "/etc/default/cfi-sh"
  /// The unit that enrolls at boot.
  public static let enrollUnit = "cfi-sh-enroll.service"
  /// How long enrollment looks for the server, now and at each try of the unit.
  public static let enrollWait = "30s"

  public init(
    key: ServerKey, fingerprint: KeyFingerprint, group: GroupName?, port: Int = 22, packageURL: String? = nil,
    packageSHA256: String? = nil, generator: String
  ) {
    self.key = key
    self.fingerprint = fingerprint
    self.group = group
    self.port = port
    self.packageURL = packageURL
    self.packageSHA256 = packageSHA256
    self.generator = generator
  }

  /// Checks a `--deb-url`: an http or https URL with a host, of printable characters without
  /// blanks (it goes into the script in single quotes, and into curl's or wget's argv).
  public static func checkPackageURL(_ text: String) throws(EnrollmentError) -> String {
    guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
      throw EnrollmentError("the .deb URL '\(displayable(text))' has blanks or characters that are not printable ASCII")
    }
    guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
      url.host?.isEmpty == false
    else {
      throw EnrollmentError("the .deb URL '\(displayable(text))' is not an http:// or https:// URL with a host")
    }
    return text
  }

  /// Checks a `--deb-sha256`: 64 hex digits (as sha256sum prints them); returns them in lowercase.
  public static func checkPackageSHA256(_ text: String) throws(EnrollmentError) -> String {
    let sum = text.lowercased()
    guard sum.utf8.count == 64, sum.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
      throw EnrollmentError("'\(displayable(text))' is not a SHA-256 (64 hex digits, as sha256sum prints it)")
    }
    return sum
  }

  /// The options of `cfi-sh client enroll` for this machine (without --wait).
  public var enrollOptions: [String] {
    (group.map { ["--group", $0.description] } ?? []) + (port == 22 ? [] : ["--port", String(port)])
      + ["--server-fingerprint", fingerprint.description]
  }

  /// The script's text.
  public var script: String {
    let what = group.map { "in the group \($0)" } ?? "in no group (the server files it as unknown)"
    var text = """
      #!/bin/sh
      # cfi client bootstrap, written by 'cfi-sh server bootstrap-script' (\(generator)).
      # Run it as root on a freshly installed machine (a preseed late_command through
      # in-target, a cloud-init runcmd): it makes the machine a client of the cfi server
      # whose ssh key has the fingerprint
      #   \(fingerprint)
      # \(what). Running it again changes nothing.
      set -eu

      say() { printf 'cfi bootstrap: %s\\n' "$*" >&2; }
      die() { say "error: $*"; exit 1; }
      [ "$(id -u)" = 0 ] || die "run it as root"


      """
    text += packageURL.map(installing) ?? writingFiles
    return text
  }

  // MARK: with cfi-sh's .deb

  private func installing(from url: String) -> String {
    // Words of letters, digits and `-_:+/` (a group name, a port, a fingerprint): as they are
    // in sh and in the unit's $ENROLL_OPTIONS, which systemd splits at blanks, quotes and all.
    let options = enrollOptions.joined(separator: " ")
    // The line in /etc/default/cfi-sh: double quotes, read by systemd and by sh.
    let optionsLine = "ENROLL_OPTIONS=\"\(options)\""
    return """
      # 1. cfi-sh, from the server.
      url=\(ShellQuote.quote(url))
      work=$(mktemp -d)
      trap 'rm -rf "$work"' EXIT
      say "downloading $url"
      if command -v curl >/dev/null 2>&1; then
        curl -fsS -o "$work/cfi-sh.deb" "$url" || die "cannot download $url"
      elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$work/cfi-sh.deb" "$url" || die "cannot download $url"
      else
        die "neither curl nor wget is installed, so $url cannot be downloaded (install one, or use a script made without --deb-url)"
      fi
      \(packageSHA256.map(Self.verifying) ?? "# (no --deb-sha256: the download is not checked)")
      export DEBIAN_FRONTEND=noninteractive
      version=$(dpkg-deb -f "$work/cfi-sh.deb" Version) || die "$url is not a .deb"
      # apt-get installs the .deb and what it depends on in one step, waiting up to 10 minutes
      # for the dpkg lock (cloud-init or unattended-upgrades hold it at first boot); apt's own
      # user reads the .deb. Standard input is the script itself when it is piped into sh:
      # nothing may read it.
      chmod 0755 "$work"
      if [ "$(dpkg-query -W -f '${Status} ${Version}' cfi-sh 2>/dev/null)" = "install ok installed $version" ]; then
        say "cfi-sh $version is installed already"
      else
        apt-get install -y -q -o DPkg::Lock::Timeout=600 "$work/cfi-sh.deb" </dev/null \\
          || die "cannot install cfi-sh $version (apt-get install failed)"
      fi
      dpkg-query -W -f '${Status}' cfi-sh 2>/dev/null | grep -q 'install ok installed' || die "cfi-sh is not installed"
      \(Self.warnMissing(["avahi-daemon", "sshd"], "the server needs avahi-daemon and openssh-server here (cfi-sh recommends them)"))

      # 2. Enrollment with the server's key pinned: its options for \(Self.enrollUnit).
      defaults=\(Self.defaultsFile)
      line=\(ShellQuote.quote(optionsLine))
      if ! grep -qxF "$line" "$defaults" 2>/dev/null; then
        { grep -v '^ENROLL_OPTIONS=' "$defaults" 2>/dev/null || true; printf '%s\\n' "$line"; } >"$defaults.cfi-new"
        mv -f "$defaults.cfi-new" "$defaults"
        say "wrote the enrollment options in $defaults"
      fi

      # 3. On a live machine (avahi-daemon running), at once; else, or while no server answers,
      #    at boot through \(Self.enrollUnit) (it tries until a server answers).
      if avahi-daemon --check 2>/dev/null; then
        status=0
        cfi-sh client enroll --wait \(Self.enrollWait) \(options) </dev/null || status=$?
        case $status in
          0) say "enrolled"; exit 0 ;;
          3) say "no cfi server answered yet: \(Self.enrollUnit) tries again" ;;
          *) die "cfi-sh client enroll failed (status $status)" ;;
        esac
      fi
      systemctl enable \(Self.enrollUnit) || die "cannot enable \(Self.enrollUnit)"
      if [ -d /run/systemd/system ] && avahi-daemon --check 2>/dev/null; then
        systemctl --no-block start \(Self.enrollUnit) || say "cannot start \(Self.enrollUnit) now: it starts at boot"
      fi
      say "\(Self.enrollUnit) enabled: it enrolls this machine at boot"

      """
  }

  /// The check of the downloaded .deb against `sum`.
  private static func verifying(_ sum: String) -> String {
    """
    sum=\(sum)
    printf '%s  %s\\n' "$sum" "$work/cfi-sh.deb" | sha256sum -c --status - \\
      || die "the .deb from $url is not the one expected (its SHA-256 is not $sum): not installed"
    """
  }

  /// A loop that warns of each of `programs` that is not installed (in PATH or /usr/sbin).
  private static func warnMissing(_ programs: [String], _ why: String) -> String {
    """
    for program in \(programs.joined(separator: " ")); do
      command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] \\
        || say "warning: $program is not installed: \(why)"
    done
    """
  }

  // MARK: without

  private var writingFiles: String {
    let service = AvahiServiceFile.client(group: group, port: port)
    return """
      # write FILE MODE: standard input into FILE (atomically), unless it already says that.
      write() {
        cat >"$1.cfi-new"
        if cmp -s "$1.cfi-new" "$1"; then rm -f "$1.cfi-new"; return 0; fi
        chmod "$2" "$1.cfi-new"
        mv -f "$1.cfi-new" "$1"
        say "wrote $1"
      }

      # 1. The announcement: avahi-daemon announces this machine with its group.
      mkdir -p \(AvahiServiceFile.defaultDirectory)
      write \(AvahiServiceFile.defaultDirectory)/\(service.fileName) 0644 <<'EOF'
      \(service.text)EOF

      # 2. The server's key for root: one line, marked with its fingerprint, edited as
      #    'cfi-sh client enroll' edits it: the first cfi line is replaced (keeping its
      #    options), further ones dropped, other lines kept; without one, it is appended.
      keys=\(AuthorizedKeys.defaultPath)
      line=\(ShellQuote.quote(AuthorizedKeys.line(for: key, fingerprint: fingerprint)))
      [ -d "${keys%/*}" ] || { mkdir -p "${keys%/*}"; chmod 0700 "${keys%/*}"; }
      # Edited into a file first: sh has no pipefail, and a failed edit must install nothing.
      edited=$keys.cfi-edit
      if [ -f "$keys" ]; then
        awk -v line="$line" '
          NF >= 3 && $1 !~ /^#/ && $NF ~ /^\(AuthorizedKeys.marker)/ {
            if (!done) print substr($0, 1, index($0, $(NF - 2)) - 1) line
            done = 1
            next
          }
          { print }
          END { if (!done) print line }' "$keys" >"$edited" || { rm -f "$edited"; die "cannot edit $keys"; }
      else
        printf '%s\\n' "$line" >"$edited"
      fi
      write "$keys" 0600 <"$edited"
      rm -f "$edited"

      # 3. The pin: cfi-sh, once installed, trusts this server key only.
      pin=\(ServerPin.defaultPath)
      mkdir -p "${pin%/*}"
      write "$pin" 0644 <<'EOF'
      \(ServerPin.text(fingerprint))EOF

      # A live machine announces itself now; else avahi-daemon reads the file when it starts.
      if avahi-daemon --check 2>/dev/null; then
        avahi-daemon -r || say "cannot reload avahi-daemon: it reads the file when it starts"
      fi
      \(Self.warnMissing(["avahi-daemon", "sshd", "rsync"], "the server needs avahi-daemon, openssh-server and rsync here"))
      say "done: this machine announces itself\(group.map { " in the group \($0)" } ?? "") and lets the cfi server in"

      """
  }
}
