package etsi

// FiCom detail codes (FiCom implementation guideline 2.1, Appendix C):
// four-digit refinements of a status code, whose first three digits they
// share. They travel in Fault.DetailCode and Status.DetailCode.
const (
	DetailInvalidNoSpamCode        = 1011
	DetailMissingNoSpamCode        = 1012
	DetailIllegalMessagingMode     = 1013
	DetailUnknownAdditionalService = 1014
	DetailDTBDNotSupported         = 1015
	DetailMimeTypeNotSupported     = 1016
	DetailMSSFormatNotSupported    = 1017

	DetailDTBDMissing = 1021
	DetailDTBSMissing = 1022

	DetailProfileDisabledByUser = 1041
	DetailServiceDisabledByUser = 1042
	DetailServiceSuspended      = 1043
	DetailProfileNotAllowed     = 1044
	DetailServiceNotAllowed     = 1045

	DetailMalformedUserID   = 1051
	DetailUserDoesNotExist  = 1052
	DetailUserNotRegistered = 1053
	DetailIncompatibleSIM   = 1054

	DetailServerTimeout = 2081
	DetailUserTimeout   = 2082

	DetailOTAUnknown              = 2091
	DetailCardNotInOTADatabase    = 2092
	DetailMECommunicationError    = 2093
	DetailInvalidCardCapabilities = 2094

	DetailUserCancelled = 4011
	DetailIncorrectPoP  = 4012
	DetailPostponed     = 4013

	DetailPINNrBlocked = 4021

	DetailPUKBlocked = 4031
	DetailPINBlocked = 4032

	DetailKeyNotFound       = 4041
	DetailIncorrectKeyUsage = 4042

	DetailRegistrationUnknown = 4071
	DetailRegistrationServer  = 4072
	DetailRegistrationSIM     = 4073

	DetailInternalUnknown       = 9001
	DetailInternalServer        = 9002
	DetailSIMApplicationError   = 9003
	DetailSIMConfigurationError = 9004
	DetailInternalDTBDMissing   = 9005
	DetailInvalidKeyLength      = 9006
	DetailInvalidHashType       = 9007
	DetailInvalidKeyAlgorithm   = 9008
)
