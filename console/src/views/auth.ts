import { timestampMs } from "@bufbuild/protobuf/wkt";
import { describeError, identity } from "../api.ts";
import { fields, h } from "../dom.ts";
import { startSession, type Role } from "../session.ts";
import type { View } from "./view.ts";

/** Sign in, or sign up and then sign in. `notice` says why the form is back (an expired session). */
export function authView(notice?: string): View {
  const status = h("p", { class: "status", id: "auth-status", role: "status" }, notice ?? "");

  const signIn = async (email: string, password: string) => {
    const answer = await identity.signIn({ email, password });
    startSession({
      token: answer.accessToken,
      userId: answer.user?.id ?? "",
      email: answer.user?.email ?? email,
      displayName: answer.user?.displayName ?? email,
      roles: (answer.user?.roles ?? []) as Role[],
      expiresAt: answer.expiresAt ? timestampMs(answer.expiresAt) : Date.now() + 15 * 60_000,
    });
  };
  const submit = (work: (values: Record<string, string>) => Promise<void>) => async (event: Event) => {
    event.preventDefault();
    status.textContent = "…";
    try {
      await work(fields(event.target as HTMLFormElement));
    } catch (error) {
      status.textContent = describeError(error);
    }
  };

  const element = h(
    "section",
    { class: "panel auth" },
    h("h2", {}, "Sign in"),
    h(
      "form",
      { id: "sign-in", onsubmit: submit((values) => signIn(values["email"]!, values["password"]!)) },
      h("label", {}, "Email ", h("input", { name: "email", type: "email", required: true, autocomplete: "username" })),
      h("label", {}, "Password ", h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" })),
      h("button", { type: "submit" }, "Sign in"),
    ),
    h("h2", {}, "New here? Sign up"),
    h(
      "form",
      {
        id: "sign-up",
        onsubmit: submit(async (values) => {
          await identity.signUp({ email: values["email"]!, password: values["password"]!, displayName: values["displayName"]! });
          await signIn(values["email"]!, values["password"]!);
        }),
      },
      h("label", {}, "Name ", h("input", { name: "displayName", required: true, autocomplete: "nickname" })),
      h("label", {}, "Email ", h("input", { name: "email", type: "email", required: true, autocomplete: "username" })),
      h("label", {}, "Password ", h("input", { name: "password", type: "password", required: true, minlength: "12", autocomplete: "new-password" })),
      h("button", { type: "submit" }, "Sign up and sign in"),
    ),
    status,
  );
  return { element, stop() {} };
}
