/// The pages, compiled into the binary: one HTML shell for every page (the script draws the page
/// the path names), one style sheet, one hand-written script. No CDN, no build step.
enum Pages {
  static let shell: [UInt8] = Array(
    """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Cortex</title>
    <link rel="stylesheet" href="/static/app.css">
    </head>
    <body>
    <header>
    <span class="brand">Cortex</span>
    <nav><a href="/" id="nav-overview">Overview</a><a href="/tasks" id="nav-tasks">Tasks</a><a href="/events" id="nav-events">Events</a></nav>
    <span id="live" class="live off" title="live updates">connecting…</span>
    </header>
    <p id="conn-note" class="conn-note" hidden></p>
    <main id="main"></main>
    <script src="/static/app.js"></script>
    </body>
    </html>

    """.utf8)

  static let unauthorized = """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>Cortex: sign-in needed</title></head>
    <body>
    <h1>Not signed in</h1>
    <p>Open the address <code>cortex start</code> printed: it carries the token once, then a cookie
    keeps you signed in. Each start makes a new token, so an address from before the daemon last
    started no longer works.</p>
    <p>Lost it? Run <code>cortex start</code> again (with the same <code>--dir</code>): when the daemon
    already runs it says so and prints its address. The token is also in <code>web.token</code> in
    the coordination directory.</p>
    </body></html>

    """

  static let style: [UInt8] = Array(styleText.utf8)
  static let script: [UInt8] = Array((scriptText + "\n" + scriptGroupsText + "\n" + scriptPagesText).utf8)
}
