package up

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"mobileid/internal/testenv"
)

// screenshots makes TestBrowser save the pages it sees to docs/screenshots:
//
//	go test ./internal/up -run TestBrowser -args -screenshots
var screenshots = flag.Bool("screenshots", false, "TestBrowser saves full-page PNGs of the consoles to docs/screenshots")

// screenshotDir is docs/screenshots as seen from the package's directory,
// where go test runs the test binary.
const screenshotDir = "../../docs/screenshots"

// browserStep bounds each subtest of TestBrowser. The flows take a few
// seconds; the margin is for a loaded CI machine.
const browserStep = 60 * time.Second

// findBrowser returns the path of a Chromium on PATH, or "".
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowser drives the consoles in a headless Chromium as a person
// would: logs in at the demo bank with Mobile ID and pays, approving each
// request on the phone console with OK and the PIN pad, and registers and
// revokes a Mobile ID at the registration desk, choosing the PINs on the
// phone.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system and a browser")
	}
	exe := findBrowser()
	if exe == "" {
		testenv.SkipOrFail(t, "no Chromium on PATH (chromium, chromium-browser or google-chrome)")
	}
	addrs := anyPorts
	if *screenshots {
		// The pictures show the addresses the documentation gives.
		addrs = DefaultAddrs
		addrs.SMPP = "127.0.0.1:0"
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := start(t, Config{DataDir: t.TempDir(), Addrs: addrs})
	// A flow that fails can leave a request waiting at a phone: stop as
	// mobileid up does, giving requests under way 10 s, rather than wait
	// for it to time out.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	b := newBrowser(t, exe)

	bank := b.tab(t, "bank")
	phones := b.tab(t, "phones")
	desk := b.tab(t, "desk")

	t.Run("Landing", func(t *testing.T) {
		c := bank.in(t)
		c.open(s.URLs.Console)
		// The page shows the demo PINs: a failure shows only its heading.
		c.waitFor("the demo people", "h1", fmt.Sprintf(`document.querySelector("main table")?.textContent.includes(%s)`, jsString(s.People[0].NationalID)))
		c.shot("landing")
	})

	p := s.People[0]
	loggedIn := t.Run("BankLogin", func(t *testing.T) {
		c := bank.in(t)
		c.open(s.URLs.Bank + "/")
		c.click("a.login")
		c.waitFor("the ID Server's login page", "body", `!!document.querySelector("input#phone")`)
		if loc := c.location(); !strings.HasPrefix(loc, s.URLs.Issuer+"/login/") {
			t.Fatalf("Log in with Mobile ID led to %s, want the ID Server's login page", loc)
		}
		c.typeInto("#phone", p.MSISDN)
		c.click(`button[type="submit"]`)
		vc := c.verificationCode()
		c.shot("idserver-login")

		ph := phones.in(t)
		ph.openPhones(s.URLs.Phones + "?q=" + strings.TrimPrefix(p.MSISDN, "+"))
		ph.approve(p.MSISDN, vc, "Demo Bank: Log in", "PIN1", p.PIN1, "")

		c.front()
		c.waitFor("the account page", "main", fmt.Sprintf(`document.querySelector(".person h2")?.textContent === %s`, jsString(p.Name)))
		if loc := c.location(); !strings.HasPrefix(loc, s.URLs.Bank+"/account") {
			t.Errorf("after the login the bank shows %s, want /account", loc)
		}
		c.shot("bank-account")
	})

	t.Run("Payment", func(t *testing.T) {
		if !loggedIn {
			t.Fatal("needs the customer logged in by BankLogin")
		}
		c := bank.in(t)
		before := c.balance()
		c.click(".balance a.button")
		c.waitFor("the payment form", "main", `!!document.querySelector("form.pay input#payee")`)
		c.typeInto("#payee", "ACME Ltd")
		c.typeInto("#iban", "EE38 2200 2210 2014 5685")
		c.typeInto("#amount", "12.50")
		c.typeInto("#reference", "Invoice 2026-17")
		c.click("form.pay button")
		vc := c.verificationCode()

		ph := phones.in(t)
		ph.approve(p.MSISDN, vc, "Demo Bank: Pay 12.50 EUR to ACME Ltd", "PIN2", p.PIN2, "phone-console")

		c.front()
		c.waitFor("the payment's result", "main", `!!document.querySelector(".result")`)
		if signer := c.text("#signer"); signer != p.Name {
			t.Errorf("the payment was signed by %q, want %q (page: %s)", signer, p.Name, c.text("main"))
		}
		if v := c.text(".result .verified"); !strings.Contains(v, "signature verified") {
			t.Errorf("the result page says %q, want that the signature verified", v)
		}
		c.shot("bank-payment")

		c.open(s.URLs.Bank + "/account")
		if after := c.balance(); before-after != 1250 {
			t.Errorf("balance went from %d to %d cents, want 1250 less", before, after)
		}
	})

	t.Run("Ops", func(t *testing.T) {
		c := bank.in(t)
		c.open(s.URLs.Console + "ops/")
		c.waitFor("the operations console's transactions", "main", `!!document.querySelector("a[href^='transactions/']")`)
		c.shotTop("ops")
		c.click("a[href^='transactions/']")
		c.waitFor("a transaction's steps", "main", `document.querySelector("main")?.textContent.includes("validated")`)
		c.shot("ops-transaction")
	})

	t.Run("Desk", func(t *testing.T) {
		msisdn := demoMSISDN(3)
		c := desk.in(t)
		c.open(s.URLs.Desk)
		c.waitFor("the officer login", "main", `!!document.querySelector("form.login #username")`)
		c.typeInto("#username", "officer")
		c.typeInto("#password", s.OfficerPassword)
		c.click("form.login button")
		c.waitFor("the desk's search page", "main", `!!document.querySelector("header .officer")`)

		c.click(`header nav a[href="register"]`)
		c.waitFor("the register form", "main", `!!document.querySelector("form.register #given_names")`)
		c.typeInto("#given_names", "Kadri")
		c.typeInto("#surname", "Saar")
		c.setValue("#country", "EE")
		c.typeInto("#national_id", "48803120220")
		// Date inputs take typed digits in the order of the browser's
		// locale; their value is the same ISO date everywhere.
		c.setValue("#date_of_birth", "1988-03-12")
		c.setValue("#document_type", "id-card")
		c.typeInto("#document_number", "AB0123456")
		c.typeInto("#document_issuer", "EE")
		c.setValue("#document_expires", time.Now().AddDate(5, 0, 0).Format(time.DateOnly))
		c.typeInto("#msisdn", msisdn)
		c.shot("desk-register")
		c.click("form.register > button")
		c.waitFor("the new Mobile ID's page", "main", `!!document.querySelector("#live .badge")`)

		ph := phones.in(t)
		ph.openPhones(s.URLs.Phones + "?q=" + strings.TrimPrefix(msisdn, "+"))
		ph.choosePINs(msisdn, "2580", "14703")

		c.front()
		c.waitFor("the Mobile ID active", "#live", `!!document.querySelector("#live h2 .badge.active")`)
		if n := c.count(`#live .certs tbody tr`); n != 2 {
			t.Errorf("the desk lists %d certificates, want 2 (%s)", n, c.text("#live"))
		}
		c.shot("desk-mobileid")

		c.click(`#live a[href$="/revoke"]`)
		c.waitFor("the revocation's confirmation page", "main", `!!document.querySelector("form.confirm select#reason")`)
		c.setValue("#reason", "request")
		c.click("form.confirm button.danger")
		c.waitFor("the Mobile ID revoked", "main", `!!document.querySelector("#live h2 .badge.revoked")`)
		for _, st := range c.texts("#live .cert-status") {
			if !strings.Contains(st, "revoked") {
				t.Errorf("a certificate's status is %q after the revocation, want revoked", st)
			}
		}
	})
}

// browser is one headless Chromium for a test.
type browser struct {
	ctx  context.Context // the browser's first tab
	used bool            // whether tab has handed out the first tab
}

// newBrowser starts Chromium and stops it when the test ends.
func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		// Chromium refuses to run as root with its sandbox; test
		// machines and containers often are root.
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run ties the browser's life to its context, so it gets no
	// deadline; a browser that does not come up is caught here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", exe, err)
		}
	case <-time.After(browserStep):
		cancel()
		t.Fatalf("start %s: no answer in %v", exe, browserStep)
	}
	return &browser{ctx: ctx}
}

// tab is a browser tab the subtests share.
type tab struct {
	name string
	ctx  context.Context
}

// tab opens a tab, the browser's first one for the first call.
func (b *browser) tab(t *testing.T, name string) *tab {
	t.Helper()
	ctx := b.ctx
	if b.used {
		var cancel context.CancelFunc
		ctx, cancel = chromedp.NewContext(b.ctx)
		t.Cleanup(cancel)
		// Attached without a deadline, for the same reason as the browser.
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("open the %s tab: %v", name, err)
		}
	}
	b.used = true
	return &tab{name: name, ctx: ctx}
}

// in brings the tab to the front for one subtest, with the subtest's
// deadline.
func (tb *tab) in(t *testing.T) *step {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	t.Cleanup(cancel)
	c := &step{t: t, tab: tb, ctx: ctx}
	c.front()
	return c
}

// step drives a tab within a subtest; every failure ends the subtest.
type step struct {
	t   *testing.T
	tab *tab
	ctx context.Context
}

func (c *step) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		c.t.Fatalf("%s tab: %s: %v", c.tab.name, what, err)
	}
}

func (c *step) open(url string) {
	c.t.Helper()
	c.do("open "+url, chromedp.Navigate(url))
}

// front makes the tab the one on screen, so that its timers are not
// throttled as a background tab's are.
func (c *step) front() {
	c.t.Helper()
	if _, err := chromedp.Call(c.ctx, page.BringToFront, cdp.Empty{}); err != nil {
		c.t.Fatalf("%s tab: bring to front: %v", c.tab.name, err)
	}
}

// click clicks the element with the mouse, once it is visible.
func (c *step) click(css string) {
	c.t.Helper()
	c.do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// typeInto types text into an input with the keyboard.
func (c *step) typeInto(css, text string) {
	c.t.Helper()
	c.do("type into "+css, chromedp.Clear(chromedp.CSS(css)), chromedp.SendKeys(chromedp.CSS(css), text))
}

// setValue sets a select's or date input's value, as picking it does.
func (c *step) setValue(css, value string) {
	c.t.Helper()
	c.do("set "+css, chromedp.SetValue(chromedp.CSS(css), value))
}

func (c *step) location() string {
	c.t.Helper()
	loc, err := chromedp.Run(c.ctx, chromedp.Location())
	if err != nil {
		c.t.Fatalf("%s tab: location: %v", c.tab.name, err)
	}
	return loc
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](c *step, expr string) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.t.Fatalf("%s tab: evaluate %s: %v", c.tab.name, expr, err)
	}
	return v
}

// text returns the trimmed text content of the first element matching
// css, "" when there is none.
func (c *step) text(css string) string {
	c.t.Helper()
	return strings.TrimSpace(eval[string](c, fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ""`, jsString(css))))
}

// texts returns the trimmed text content of every element matching css.
func (c *step) texts(css string) []string {
	c.t.Helper()
	v := eval[[]string](c, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), e => e.textContent.trim())`, jsString(css)))
	if len(v) == 0 {
		c.t.Fatalf("%s tab: no %s on the page", c.tab.name, css)
	}
	return v
}

func (c *step) count(css string) int {
	c.t.Helper()
	return eval[int](c, fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(css)))
}

// waitFor waits until the JavaScript condition holds. On failure it
// shows the text of the element show, chosen so that no PIN is printed.
func (c *step) waitFor(what, show, cond string) {
	c.t.Helper()
	lastErr := c.poll(c.ctx, cond)
	if lastErr == nil {
		return
	}
	// The step's context is over; look at the page with a fresh one.
	ctx, cancel := context.WithTimeout(c.tab.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	seen, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s)?.innerText ?? "(no %s)"`, jsString(show), show)))
	if err != nil {
		seen = "(unreadable: " + err.Error() + ")"
	}
	if !errors.Is(lastErr, context.DeadlineExceeded) {
		seen += "\nlast evaluation error: " + lastErr.Error()
	}
	c.t.Fatalf("%s tab: no %s within %v at %s; %s shows:\n%s", c.tab.name, what, browserStep, loc, show, seen)
}

// poll asks the page every 100 ms whether the JavaScript condition holds,
// until it does (nil) or ctx ends (the last evaluation error, or ctx's).
// It asks from the test rather than with the page's timers, which a
// browser throttles in a background tab.
func (c *step) poll(ctx context.Context, cond string) error {
	expr := "!!(" + cond + ")"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		// The condition may be asked while a page is being replaced by
		// the next; an evaluation that fails then is asked again.
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		switch {
		case err == nil && ok:
			return nil
		case err != nil && ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return lastErr
		}
	}
}

// verificationCode waits for the four-digit verification code the ID
// Server's and the bank's waiting pages show, and returns it.
func (c *step) verificationCode() string {
	c.t.Helper()
	c.waitFor("verification code", "main", `/^\d{4}$/.test(document.querySelector(".vc strong")?.textContent ?? "")`)
	return c.text(".vc strong")
}

// balance reads the account page's balance in cents.
func (c *step) balance() int64 {
	c.t.Helper()
	c.waitFor("balance", "main", `!!document.querySelector("#balance")`)
	text := c.text("#balance")
	amount, cur, _ := strings.Cut(text, " ")
	n, err := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(amount), 10, 64)
	if err != nil || cur != "EUR" || !strings.Contains(amount, ".") {
		c.t.Fatalf("balance %q is not an amount in EUR", text)
	}
	return n
}

// shot saves a full-page PNG of the tab to docs/screenshots when the test
// runs with -screenshots.
func (c *step) shot(name string) { c.screenshot(name, chromedp.FullScreenshot(100)) }

// shotTop saves what the window shows, for a page too long to show whole.
func (c *step) shotTop(name string) { c.screenshot(name, chromedp.CaptureScreenshot()) }

func (c *step) screenshot(name string, action chromedp.Action[[]byte]) {
	c.t.Helper()
	if !*screenshots {
		return
	}
	png, err := chromedp.Run(c.ctx, action)
	if err != nil {
		c.t.Fatalf("%s tab: screenshot: %v", c.tab.name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// phoneSel returns the CSS selector of an element of the phone with the
// number on the console.
func phoneSel(msisdn, css string) string {
	return "#phone-" + strings.TrimPrefix(msisdn, "+") + " " + css
}

// openPhones opens the phone console and counts the requests its keys
// send, for press.
func (c *step) openPhones(url string) {
	c.t.Helper()
	c.open(url)
	c.do("count the console's requests", chromedp.Evaluate[chromedp.Void](
		`window.keyRequests = 0; document.addEventListener("htmx:beforeRequest", () => window.keyRequests++)`))
}

// settled is true when htmx has finished drawing the phone: the console
// redraws a phone at every change, and htmx wires up the redrawn keys
// only when the redraw settles (20 ms later).
func settled(msisdn string) string {
	slot := jsString("#phone-" + strings.TrimPrefix(msisdn, "+"))
	return fmt.Sprintf(`!document.querySelector(%s)?.classList.contains("htmx-settling") && !document.querySelector(%s + " .htmx-added")`, slot, slot)
}

// press clicks a key of the phone on the console, as a person does: a
// key clicked just as the phone is redrawn (when the event stream
// connects, or by a change the page has not yet shown) sends nothing,
// and the person clicks again. A click that sent its request is never
// repeated, so no key is pressed twice. key names the key in messages,
// which never say which digit was pressed.
func (c *step) press(msisdn, css, key string) {
	c.t.Helper()
	sel := chromedp.CSS(phoneSel(msisdn, css))
	for attempt := 1; ; attempt++ {
		c.waitFor("phone redrawn", phoneSel(msisdn, ".screen"), settled(msisdn))
		sent := eval[int](c, `window.keyRequests ?? -1`)
		if sent < 0 {
			c.t.Fatalf("%s tab: the phone console was not opened with openPhones", c.tab.name)
		}
		c.do("click "+key, chromedp.Click(sel))
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		err := c.poll(ctx, fmt.Sprintf(`window.keyRequests > %d`, sent))
		cancel()
		if err == nil {
			return
		}
		if attempt == 3 {
			c.t.Fatalf("%s tab: %d clicks on %s sent nothing (%v)", c.tab.name, attempt, key, err)
		}
		c.t.Logf("%s tab: a click on %s sent nothing; clicking again", c.tab.name, key)
	}
}

// approve checks the request on the phone's screen and approves it as
// its owner: OK, then the PIN on the pad and ✓. With shot, the request
// on the screen is saved under that name.
func (c *step) approve(msisdn, vc, text, pinName, pin, shot string) {
	c.t.Helper()
	screen := phoneSel(msisdn, ".screen")
	c.waitFor("request with verification code "+vc, screen, fmt.Sprintf(
		`document.querySelector(%s)?.textContent.includes("Verification code: " + %s) && !document.querySelector(%s).disabled`,
		jsString(phoneSel(msisdn, ".screen .text")), jsString(vc), jsString(phoneSel(msisdn, "button.ok"))))
	if got := c.text(phoneSel(msisdn, ".screen .text")); !strings.Contains(got, text) {
		c.t.Errorf("the phone shows %q, want %q", got, text)
	}
	if shot != "" {
		c.shot(shot)
	}
	c.press(msisdn, "button.ok", "OK")
	c.enterPIN(msisdn, "Enter "+pinName, pin)
	c.waitFor("the phone done with the request", screen, fmt.Sprintf(`!document.querySelector(%s)?.classList.contains("asking")`, jsString(screen)))
}

// choosePINs answers the SIM's questions of a registration: OK to start,
// then each PIN chosen and repeated.
func (c *step) choosePINs(msisdn, pin1, pin2 string) {
	c.t.Helper()
	screen := phoneSel(msisdn, ".screen")
	c.waitFor("request to choose PINs", screen, fmt.Sprintf(
		`document.querySelector(%s)?.textContent.includes("Choose your Mobile ID PINs") && !document.querySelector(%s).disabled`,
		jsString(phoneSel(msisdn, ".screen .text")), jsString(phoneSel(msisdn, "button.ok"))))
	c.press(msisdn, "button.ok", "OK")
	c.enterPIN(msisdn, "Choose PIN1", pin1)
	c.enterPIN(msisdn, "Repeat PIN1", pin1)
	c.enterPIN(msisdn, "Choose PIN2", pin2)
	c.enterPIN(msisdn, "Repeat PIN2", pin2)
}

// enterPIN waits for the PIN prompt that starts with prompt, clicks the
// PIN's digits on the pad and ✓. After each digit it waits until the
// screen counts it, so that the clicks reach the phone in order.
func (c *step) enterPIN(msisdn, prompt, pin string) {
	c.t.Helper()
	screen := phoneSel(msisdn, ".screen")
	dots := jsString(phoneSel(msisdn, ".screen .dots"))
	c.waitFor("PIN prompt "+prompt, screen, fmt.Sprintf(
		`document.querySelector(%s)?.textContent.startsWith(%s) && !document.querySelector(%s)?.disabled && document.querySelector(%s)?.getAttribute("aria-label") === "0 digits typed"`,
		jsString(phoneSel(msisdn, ".screen .prompt")), jsString(prompt), jsString(phoneSel(msisdn, ".pad button.enter")), dots))
	for i, d := range pin {
		c.press(msisdn, fmt.Sprintf(`.pad button[hx-vals='{"k":"%c"}']`, d), "a digit")
		c.waitFor(fmt.Sprintf("digit %d of %d on the screen", i+1, len(pin)), screen, fmt.Sprintf(
			`document.querySelector(%s)?.getAttribute("aria-label") === "%d digits typed"`, dots, i+1))
	}
	c.press(msisdn, ".pad button.enter", "✓")
	c.waitFor("PIN prompt "+prompt+" answered", screen, fmt.Sprintf(
		`document.querySelector(%s)?.getAttribute("aria-label") !== "%d digits typed"`, dots, len(pin)))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
