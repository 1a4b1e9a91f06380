import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { contractViolations, InvalidArgumentError, ROLES } from "@meshwork/platform";
import { SetUserRolesRequestSchema, SignInRequestSchema, SignUpRequestSchema } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { checkPasswordPolicy, normaliseEmail } from "../../src/domain/credentials.ts";
import { parseRoles } from "../../src/domain/roles.ts";

/** Runs `check`; an InvalidArgumentError counts as a refusal, any other error fails the property. */
const refusesOnlyWithInvalidArgument = (check: () => void): boolean => {
  try {
    check();
    return true;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return false;
    throw error;
  }
};

describe("identity's validators, for any input (fast-check)", () => {
  it("normalises any string to a trimmed, lower-case, stable address or refuses it as InvalidArgument", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (raw) => {
        let email = "";
        if (!refusesOnlyWithInvalidArgument(() => (email = normaliseEmail(raw)))) return;
        assert.equal(email, email.trim().toLowerCase());
        assert.ok(email.length <= 254);
        assert.equal(normaliseEmail(email), email, "normalising twice changes nothing");
      }),
    );
  });

  it("accepts every address the contract's email rule admits: the contract is never looser than the domain", () => {
    fc.assert(
      fc.property(fc.emailAddress(), fc.constantFrom("", " ", "\t", "  "), fc.constantFrom("", " ", "\n"), (address, before, after) => {
        const email = before + address + after;
        const request = create(SignUpRequestSchema, { email, password: "x", displayName: "x" });
        fc.pre(contractViolations(SignUpRequestSchema, request).length === 0);
        assert.equal(normaliseEmail(email), address.toLowerCase());
      }),
    );
  });

  it("judges any password by length and the common list only, refusing as InvalidArgument", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: 1, max: 64 }), (password, minLength) => {
        const accepted = refusesOnlyWithInvalidArgument(() => checkPasswordPolicy(password, minLength));
        if (password.length < minLength || password.length > 256) assert.equal(accepted, false);
      }),
    );
  });

  it("turns any list of strings into unique known roles, or refuses it as InvalidArgument", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...ROLES), fc.string()), { maxLength: 8 }), (raw) => {
        let roles: string[] = [];
        if (!refusesOnlyWithInvalidArgument(() => (roles = parseRoles(raw)))) return;
        assert.equal(new Set(roles).size, roles.length);
        for (const role of roles) assert.ok((ROLES as readonly string[]).includes(role));
      }),
    );
  });
});

describe("the identity contract (identity.proto rules)", () => {
  it("admits an address with surrounding space at sign-up, and refuses what is no address", () => {
    const signUp = (email: string) => contractViolations(SignUpRequestSchema, create(SignUpRequestSchema, { email, password: "x", displayName: "x" }));
    assert.deepEqual(signUp(" ALAN@example.com"), []);
    for (const bad of ["", "alan", "alan@example", "a b@example.com", `${"a".repeat(250)}@example.com`]) assert.notDeepEqual(signUp(bad), [], bad);
  });

  it("bounds sign-in input without revealing the password policy", () => {
    assert.deepEqual(contractViolations(SignInRequestSchema, create(SignInRequestSchema, { email: "a@b.c", password: "x" })), []);
    assert.match(contractViolations(SignInRequestSchema, create(SignInRequestSchema, { email: "a@b.c", password: "p".repeat(257) })).join(), /^password: .*\[string\.max_len\]/);
    assert.match(contractViolations(SignInRequestSchema, create(SignInRequestSchema, { email: "", password: "x" })).join(), /^email: .*\[string\.min_len\]/);
  });

  it("admits only known, unique roles and a UUID user id", () => {
    const userId = "01890a5d-ac96-774b-bcce-b302099a8057";
    assert.deepEqual(contractViolations(SetUserRolesRequestSchema, create(SetUserRolesRequestSchema, { userId, roles: ["publisher"] })), []);
    assert.match(contractViolations(SetUserRolesRequestSchema, create(SetUserRolesRequestSchema, { userId, roles: ["root"] })).join(), /^roles\[0\]: .*\[string\.in\]/);
    assert.match(contractViolations(SetUserRolesRequestSchema, create(SetUserRolesRequestSchema, { userId, roles: ["admin", "admin"] })).join(), /^roles: .*\[repeated\.unique\]/);
    assert.match(contractViolations(SetUserRolesRequestSchema, create(SetUserRolesRequestSchema, { userId: "u".repeat(1_000_000), roles: ["admin"] })).join(), /^user_id: .*\[string\.uuid\]/);
  });
});
